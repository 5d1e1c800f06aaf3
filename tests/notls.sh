#!/usr/bin/env bash
# Configure, build and test a build without TLS (-DMLLP_TLS=OFF): nothing may
# link or reference wolfSSL, and the unit and integration labels pass.
# usage: notls.sh SRC_DIR BUILD_DIR CORPUS_DIR C_COMPILER [EXTRA_CORPUS_DIR]
# The tree reads the main build's corpora (it generates none).
set -euo pipefail
src=$1 build=$2 corpus=$3 cc=$4 extra=${5:-}
fail() { echo "notls.sh: $*" >&2; exit 1; }
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$cc" \
  -DMLLP_TLS=OFF -DMLLP_BUILD_BENCH=OFF -DMLLP_BUILD_TOOLS=ON \
  -DMLLP_CORPUS_DIR="$corpus" -DMLLP_EXTRA_CORPUS_DIR="$extra" -DMLLP_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null

# The configuration never looked for wolfSSL, and says it has no TLS.
if grep -qi '^WOLFSSL_' "$build/CMakeCache.txt"; then
  fail "wolfSSL was looked up in a build with MLLP_TLS=OFF"
fi
grep -qx '#define MLLP_HAVE_TLS 0' "$build/include/mllp/config.h" ||
  fail "include/mllp/config.h does not say MLLP_HAVE_TLS 0"
if grep -q wolfssl "$build/mllp.pc"; then fail "mllp.pc requires wolfssl"; fi

# No built program or shared object needs libwolfssl, and no object file
# or archive refers to a wolfSSL symbol.
checked=0
while IFS= read -r -d '' f; do
  case $(head -c 4 "$f" | od -An -c | tr -d ' ') in
  177ELF) ;;
  *) continue ;;
  esac
  if readelf -d "$f" 2>/dev/null | grep -qi 'NEEDED.*wolfssl'; then
    fail "$f needs libwolfssl"
  fi
  if nm -A "$f" 2>/dev/null | grep -Eq ' [A-Za-z] (wolfSSL|wc_)'; then
    fail "$f refers to wolfSSL symbols"
  fi
  checked=$((checked + 1))
done < <(find "$build" -path "$build/CMakeFiles" -prune -o -type f \
  \( -perm -u+x -o -name '*.so*' -o -name '*.a' \) -print0)
[ "$checked" -gt 5 ] || fail "found only $checked binaries to check in $build"
for lib in "$build/libmllp.a"; do
  [ -e "$lib" ] || fail "$lib not built"
  if nm "$lib" 2>/dev/null | grep -Eq ' U (wolfSSL|wc_)'; then fail "$lib refers to wolfSSL"; fi
done
echo "notls.sh: $checked binaries and libraries checked: none needs wolfSSL"

# The bridge's process tests run in the main suite only (label bridge).
ctest --test-dir "$build" -L 'unit|integration' -LE bridge --output-on-failure -j"$(nproc)"
