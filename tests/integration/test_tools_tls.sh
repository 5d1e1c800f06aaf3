#!/usr/bin/env bash
# The tools over TLS: mllp-recv --tls (with --require-client-cert
# and --allow-cn) against mllp-send and mllp-load with --tls --ca --cert
# --key, --server-name and --insecure; usage errors. Certificates are made
# here by make_certs.sh. Ephemeral ports read from "listening on ADDR:PORT";
# every wait is bounded.
# usage: test_tools_tls.sh MAKE_CERTS MLLP_RECV MLLP_SEND MLLP_LOAD
set -uo pipefail
certs=$1 recv=$2 send=$3 load=$4
FAIL_FAST=1
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
sh "$certs" "$TMP/c" >/dev/null || fail "make_certs.sh"
c=$TMP/c

# start NAME ARGS...: mllp-recv on port 0, stdout on fd 5 (open_listener):
# PORT and PID.
start() {
	local name=$1
	shift
	open_listener "$name" "$recv" "$@" 0
}

printf 'MSH|^~\\&|A|B|C|D|20240101120000||ADT^A01|T1|P|2.5\rPID|1\r' >"$TMP/m.hl7"

# Server-authenticated TLS.
start srv --tls --cert "$c/server.pem" --key "$c/server.key" --bind 127.0.0.1
grep -q "non secured" "$TMP/srv.err" && fail "TLS receiver warned about plaintext"
out=$("$send" --tls --ca "$c/ca.pem" localhost "$PORT" "$TMP/m.hl7" 2>&1) ||
	fail "send over TLS: $out"
[[ $out == *application_accept* ]] || fail "no AA over TLS: $out"
out=$("$send" --tls --ca "$c/ca.pem" --server-name wrong.example -t 3000 \
	127.0.0.1 "$PORT" "$TMP/m.hl7" 2>&1) && fail "host mismatch accepted: $out"
[[ $out == *"host name mismatch"* ]] || fail "no host-name reason: $out"
out=$("$send" --tls --insecure 127.0.0.1 "$PORT" "$TMP/m.hl7" 2>&1) ||
	fail "insecure send: $out"
[[ $out == *"does not verify the server"* ]] || fail "no insecure warning: $out"
out=$("$load" --tls --ca "$c/ca.pem" -c 4 -n 200 --no-progress localhost \
	"$PORT" 2>&1) || fail "mllp-load over TLS: $out"
# A plaintext client against the TLS port: the reply was TLS, and it says so.
out=$("$send" -t 3000 127.0.0.1 "$PORT" "$TMP/m.hl7" 2>&1) &&
	fail "plaintext send to a TLS port succeeded: $out"
[[ $out == *"(the peer answered with TLS: is it a TLS port?)"* ]] ||
	fail "plaintext to TLS: no reason: $out"
kill "$PID"
wait "$PID" 2>/dev/null

# --tls against a plaintext receiver: the handshake times out, and the
# error says the peer sent no TLS.
start plain --bind 127.0.0.1
out=$("$send" --tls --ca "$c/ca.pem" -t 3000 localhost "$PORT" "$TMP/m.hl7" 2>&1) &&
	fail "TLS send to a plaintext port succeeded: $out"
[[ $out == *"the peer sent no TLS handshake: is it a plaintext MLLP port? (MLLP_ERR_TLS)"* ]] ||
	fail "TLS to plaintext: no reason: $out"
kill "$PID"
wait "$PID" 2>/dev/null

# Mutual TLS with a name allow-list (case-insensitive).
start mtls --tls --cert "$c/server.pem" --key "$c/server.key" --ca "$c/ca.pem" \
	--require-client-cert --allow-cn CLIENT.EXAMPLE --bind 127.0.0.1
out=$("$send" --tls --ca "$c/ca.pem" --cert "$c/client.pem" --key "$c/client.key" \
	localhost "$PORT" "$TMP/m.hl7" 2>&1) || fail "mTLS allowed client: $out"
out=$("$send" --tls --ca "$c/ca.pem" --cert "$c/other.pem" --key "$c/other.key" \
	-t 3000 localhost "$PORT" "$TMP/m.hl7" 2>&1) && fail "other client accepted"
[[ $out == *MLLP_ERR_TLS* ]] || fail "no TLS error for a refused client: $out"
out=$("$send" --tls --ca "$c/ca.pem" -t 3000 localhost "$PORT" "$TMP/m.hl7" 2>&1) &&
	fail "client without certificate accepted"
# (logged before the alert is sent: no wait needed)
grep -q "client name not allowed" "$TMP/mtls.err" || fail "refusal not logged: $(cat "$TMP/mtls.err")"
kill "$PID"
wait "$PID" 2>/dev/null

# Usage errors (64) and a missing file (1, named).
"$recv" --cert "$c/server.pem" 0 >/dev/null 2>&1
[[ $? == 64 ]] || fail "--cert without --tls not refused"
"$recv" --tls 0 >/dev/null 2>&1
[[ $? == 64 ]] || fail "--tls without --cert/--key not refused"
err=$("$recv" --tls --cert "$c/nope.pem" --key "$c/server.key" 0 2>&1 >/dev/null)
[[ $? == 1 && $err == *nope.pem* ]] || fail "missing cert file not named: $err"
"$send" --ca "$c/ca.pem" localhost 1 "$TMP/m.hl7" >/dev/null 2>&1
[[ $? == 64 ]] || fail "mllp-send --ca without --tls not refused"
"$load" --tls -n 1 --no-progress >/dev/null 2>&1
[[ $? == 64 ]] || fail "mllp-load --tls without HOST PORT not refused"
err=$("$send" --tls --ca "$c/nope-ca.pem" localhost 1 "$TMP/m.hl7" 2>&1)
[[ $? == 2 && $err == *nope-ca.pem* ]] || fail "missing CA file not named: $err"
echo "ok"
