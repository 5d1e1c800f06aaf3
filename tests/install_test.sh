#!/usr/bin/env bash
# Install the built library into a scratch prefix, then build and run a
# consumer through find_package(mllp) and through pkg-config.
# usage: install_test.sh BUILD_DIR SOURCE_DIR C_COMPILER
set -euo pipefail
build=$1 src=$2 cc=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'echo "install_test.sh: failed at line $LINENO" >&2' ERR
cmake --install "$build" --prefix "$work/prefix" >/dev/null
test ! -e "$work/prefix/include/mllp/internal.h"
if find "$work/prefix/include" -name '*.h' | grep -v '/include/mllp/' | grep -q .; then
	echo "headers installed outside include/mllp/"; exit 1
fi
cmake -S "$src/tests/consumer" -B "$work/consumer" -DCMAKE_C_COMPILER="$cc" \
	-DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
LD_LIBRARY_PATH="$work/prefix/lib:$work/prefix/lib64" "$work/consumer/consumer_shared"
"$work/consumer/consumer_static"
pc=$(find "$work/prefix" -name mllp.pc)
export PKG_CONFIG_PATH=$(dirname "$pc")
"$cc" -o "$work/pc_consumer" "$src/tests/consumer/consumer.c" $(pkg-config --cflags --libs mllp)
LD_LIBRARY_PATH="$(pkg-config --variable=libdir mllp)" "$work/pc_consumer"
echo "install: find_package and pkg-config consumers work"
