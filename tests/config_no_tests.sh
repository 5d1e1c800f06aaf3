#!/usr/bin/env bash
# The library alone, as README says: configure with -DMLLP_BUILD_TESTS=OFF
# (and no benchmarks, no tools), build, install into a prefix. Nothing of
# the test suite may be looked up (cmocka, the corpus) or registered, and
# the prefix holds the libraries, headers and package files, no programs.
# usage: config_no_tests.sh SRC_DIR BUILD_DIR C_COMPILER
set -euo pipefail
src=$1 build=$2 cc=$3
fail() { echo "config_no_tests.sh: $*" >&2; exit 1; }
rm -rf "$build"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="$cc" -DMLLP_BUILD_TESTS=OFF -DMLLP_BUILD_BENCH=OFF \
  -DMLLP_BUILD_TOOLS=OFF -DMLLP_WERROR=ON >"$build.log" 2>&1 ||
  { cat "$build.log"; fail "configure with -DMLLP_BUILD_TESTS=OFF failed"; }
if grep -q '^CMOCKA_' "$build/CMakeCache.txt"; then
  fail "cmocka was looked up with MLLP_BUILD_TESTS=OFF"
fi
[ ! -e "$build/CTestTestfile.cmake" ] || fail "tests registered with MLLP_BUILD_TESTS=OFF"
[ ! -e "$build/corpus" ] || fail "the test corpus was generated with MLLP_BUILD_TESTS=OFF"
cmake --build "$build" -j"$(nproc)" >"$build.log" 2>&1 ||
  { tail -30 "$build.log"; fail "build with -DMLLP_BUILD_TESTS=OFF failed"; }
prefix=$build/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null ||
  fail "cmake --install $build --prefix $prefix failed"
for f in include/mllp/mllp.h include/mllp/config.h; do
  [ -f "$prefix/$f" ] || fail "not installed: $f"
done
for pat in 'libmllp.so' 'libmllp.a' 'pkgconfig/mllp.pc' 'cmake/mllp/mllpConfig.cmake'; do
  find "$prefix" -path "*/$pat" | grep -q . || fail "not installed: $pat"
done
[ ! -e "$prefix/bin" ] || fail "programs installed without tools: $(ls "$prefix/bin")"
echo "config_no_tests: configured, built and installed the library alone"
