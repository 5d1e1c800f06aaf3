#!/usr/bin/env bash
# The whole tree (library, tools, tests) builds with GCC as well, with
# warnings as errors: GCC warns about things clang does not (for example
# -Wformat-truncation at -O2). Nothing is run here: the suite runs in the
# clang build.
# usage: config_gcc.sh SRC_DIR BUILD_DIR CORPUS_DIR
set -euo pipefail
src=$1 build=$2 corpus=$3
if ! command -v gcc >/dev/null; then
  echo "skipped: gcc not found (apt-get install gcc): the GCC build is not checked"
  exit 77
fi
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc \
  -DMLLP_BUILD_BENCH=OFF -DMLLP_BUILD_TOOLS=ON -DMLLP_CORPUS_DIR="$corpus" \
  -DMLLP_WERROR=ON >/dev/null
if ! cmake --build "$build" -j"$(nproc)" >"$build.log" 2>&1; then
  grep -E -A4 'error|warning' "$build.log" | head -60
  echo "config_gcc.sh: the GCC build with -Werror fails (full log: $build.log)" >&2
  exit 1
fi
echo "config_gcc.sh: the tree builds with $(gcc -dumpfullversion) and -Werror"
