#!/usr/bin/env bash
# The tools in a build without TLS (-DMLLP_TLS=OFF): --tls fails at once
# with "built without TLS", and the tools still work in plaintext. A port
# that refuses connections (nothing listens on it) is given, so a tool that
# tried to connect instead would fail differently. Every wait is bounded.
# Exit status: 64 (usage): a tool refuses --tls while parsing its options.
# usage: test_tools_no_tls.sh MLLP_RECV MLLP_SEND MLLP_LOAD
set -uo pipefail
recv=$1 send=$2 load=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
printf 'MSH|^~\\&|A|B|C|D|20240101120000||ADT^A01|T1|P|2.5\rPID|1\r' >"$tmp/m.hl7"

# expect NAME STATUS... -- CMD...: CMD exits with one of the STATUS values
# within 20 s and says "built without TLS" on stderr.
expect() {
	local name=$1
	shift
	local want=()
	while [[ $1 != -- ]]; do
		want+=("$1")
		shift
	done
	shift
	timeout 20 "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
	local st=$?
	local ok=0
	for w in "${want[@]}"; do [[ $st == "$w" ]] && ok=1; done
	((ok)) || fail "$name: exit $st, want ${want[*]}: $(cat "$tmp/err")"
	grep -q "built without TLS" "$tmp/err" ||
		fail "$name: no 'built without TLS' in: $(cat "$tmp/err")"
	echo "ok: $name: $(head -1 "$tmp/err")"
}

expect "mllp-send --tls" 64 -- "$send" --tls -t 2000 127.0.0.1 1 "$tmp/m.hl7"
expect "mllp-send --tls --ca" 64 -- "$send" --tls --ca "$tmp/ca.pem" \
	127.0.0.1 1 "$tmp/m.hl7"
expect "mllp-load --tls" 64 -- "$load" --tls -n 1 -c 1 127.0.0.1 1
expect "mllp-recv --tls" 64 -- "$recv" --tls --cert "$tmp/s.pem" \
	--key "$tmp/s.key" --bind 127.0.0.1 0

# Plaintext still works: the embedded receiver, 20 messages.
timeout 60 "$load" -n 20 -c 2 >"$tmp/load.out" 2>"$tmp/load.err" ||
	fail "plaintext mllp-load: $(cat "$tmp/load.err")"
echo "ok: plaintext mllp-load"
echo "5 passed, 0 failed"
