#!/usr/bin/env bash
# Install the built library into a scratch prefix, then build and run a
# consumer through find_package(mllp) and through pkg-config.
# usage: install_test.sh BUILD_DIR SOURCE_DIR C_COMPILER
set -euo pipefail
build=$1 src=$2 cc=$3
# TMP (the work directory, removed at exit), install_prefix
source "$(dirname "$0")/lib.sh"
work=$TMP
trap 'echo "install_test.sh: failed at line $LINENO" >&2' ERR
install_prefix "$build" "$work/prefix"
test ! -e "$work/prefix/include/mllp/internal.h"
if find "$work/prefix/include" -name '*.h' | grep -v '/include/mllp/' | grep -q .; then
	echo "headers installed outside include/mllp/"; exit 1
fi
cmake -S "$src/tests/consumer" -B "$work/consumer" -DCMAKE_C_COMPILER="$cc" \
	-DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
LD_LIBRARY_PATH="$work/prefix/lib:$work/prefix/lib64" "$work/consumer/consumer_shared"
"$work/consumer/consumer_static"
# Without pkg-config: find_package(mllp) must not need it (nor the static
# library's dependencies' .pc files), for mllp::mllp nor mllp::mllp_static.
env -u PKG_CONFIG_PATH cmake -S "$src/tests/consumer" -B "$work/consumer-nopc" \
	-DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$work/prefix" \
	-DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON \
	-DPKG_CONFIG_EXECUTABLE=/nonexistent/pkg-config >"$work/nopc.log" 2>&1 ||
	{ cat "$work/nopc.log"; echo "find_package(mllp) needs pkg-config"; exit 1; }
cmake --build "$work/consumer-nopc" >/dev/null
LD_LIBRARY_PATH="$work/prefix/lib:$work/prefix/lib64" "$work/consumer-nopc/consumer_shared"
"$work/consumer-nopc/consumer_static"
"$cc" -o "$work/pc_consumer" "$src/tests/consumer/consumer.c" $(pkg-config --cflags --libs mllp)
LD_LIBRARY_PATH="$(pkg-config --variable=libdir mllp)" "$work/pc_consumer"
echo "install: find_package (with and without pkg-config) and pkg-config consumers work"

# The soname: libmllp.so.0.MINOR while the major version is 0 (every 0.x
# minor release may break the ABI), libmllp.so.MAJOR from 1.0 on.
ver=$(sed -n 's/^#define MLLP_VERSION_STRING "\(.*\)"$/\1/p' "$src/include/mllp/version.h")
major=${ver%%.*} minor=${ver#*.} minor=${minor%%.*}
if [ "$major" = 0 ]; then want=libmllp.so.0.$minor; else want=libmllp.so.$major; fi
lib=$(find "$work/prefix" -name 'libmllp.so' | head -1)
[ -n "$lib" ] || { echo "no libmllp.so installed"; exit 1; }
readelf -d "$lib" >"$work/lib.dyn"
grep -q "SONAME.*\[$want\]" "$work/lib.dyn" ||
	{ echo "soname of $lib: $(grep SONAME "$work/lib.dyn"), want $want"; exit 1; }
test -e "$(dirname "$lib")/$want" || { echo "$want not installed"; exit 1; }
echo "install: soname $want"

# The tools (when built): they link the shared library through a RUNPATH
# relative to themselves, so they run from the prefix as installed, and
# bring their man pages and bash completions; --strip strips them.
if [ -e "$work/prefix/bin/mllp-send" ]; then
	for t in mllp-send mllp-recv mllp-load; do
		bin=$work/prefix/bin/$t
		readelf -d "$bin" >"$work/dyn"
		grep -q 'NEEDED.*\[libmllp\.so\.' "$work/dyn" || { echo "$t: does not link libmllp.so"; exit 1; }
		if grep -Eq 'NEEDED.*\[(libjemalloc|libstdc\+\+)' "$work/dyn"; then
			echo "$t: links jemalloc or libstdc++ itself"; exit 1
		fi
		grep -Eq '(RUNPATH|RPATH).*\[\$ORIGIN/\.\./lib' "$work/dyn" || { echo "$t: no \$ORIGIN/../lib RUNPATH"; exit 1; }
		env -u LD_LIBRARY_PATH "$bin" --version >"$work/version"
		grep -q "^$t (libmllp) " "$work/version" || { echo "$t --version: $(cat "$work/version")"; exit 1; }
		env -u LD_LIBRARY_PATH ldd "$bin" >"$work/ldd"
		grep -q "libmllp\.so\.[0-9.]* => $work/prefix/[^ ]*/libmllp\.so" "$work/ldd" ||
			{ echo "$t: libmllp.so not found in the prefix: $(cat "$work/ldd")"; exit 1; }
		test -f "$work/prefix/share/man/man1/$t.1"
		test -f "$work/prefix/share/bash-completion/completions/$t"
	done
	cmake --install "$build" --prefix "$work/stripped" --strip >/dev/null
	for t in mllp-send mllp-recv mllp-load; do
		readelf -S "$work/stripped/bin/$t" >"$work/sections"
		if grep -Eq '\.(symtab|debug_info)' "$work/sections"; then
			echo "$t: not stripped by --strip"; exit 1
		fi
		env -u LD_LIBRARY_PATH "$work/stripped/bin/$t" --version >/dev/null
	done
	echo "install: the tools run from the prefix, with man pages and completions; --strip strips them"
fi
