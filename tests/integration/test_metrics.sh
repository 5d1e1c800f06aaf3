#!/usr/bin/env bash
# mllp-recv --metrics: the Prometheus page over HTTP. Both ports are read
# from stdout ("listening on ADDR:PORT", then "metrics on ADDR:PORT"; port
# 0: ephemeral), the page is scraped with curl before, during and after
# traffic (exact counts for a known number of messages and ACK mix), checked
# with `promtool check metrics`, and the server answers 404/405, survives
# garbage (random bytes, a huge header, an unfinished request, more
# connections than it takes, a GET with a body) and still answers
# afterwards.
# No sleeps: every wait is a bounded read or a bounded polling loop.
# Last, the pages of a live pool, receiver and ACK counts rendered as one
# by test_metrics_live go through promtool too.
# usage: test_metrics.sh PATH/TO/mllp-recv PATH/TO/mllp-send
#        PATH/TO/test_metrics_live
set -uo pipefail
recv=$1
send=$2
live=$3
# curl scrapes, promtool validates (Debian packages curl and prometheus,
# installed by .ci/test); python3 is a build requirement already.
for t in curl promtool; do
	if ! command -v "$t" >/dev/null; then
		echo "SKIP: $t not found (install Debian's curl and prometheus)" >&2
		exit 77
	fi
done
FAIL_FAST=1
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

SB=$'\x0b'
EB=$'\x1c'
CR=$'\r'
msg() { printf 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|%s|P|2.5\rPID|1\r' "$1"; }

# ---- bad --metrics values: exit 64, the reason -------------------------------
for v in nope 127.0.0.1 127.0.0.1:70000 ::1:9 '[::1]' :9 127.0.0.1:x; do
	"$recv" --metrics "$v" 0 >/dev/null 2>"$TMP/bad.err"
	rc=$?
	[[ $rc == 64 ]] || fail "--metrics '$v': exit $rc, want 64"
	[[ $(cat "$TMP/bad.err") == "mllp-recv: --metrics wants ADDR:PORT (e.g. 127.0.0.1:9464, [::1]:0), got '$v' (see --help)" ]] ||
		fail "--metrics '$v' error text: $(cat "$TMP/bad.err")"
done

# start NAME ARGS...: run mllp-recv with stdout on fd 5 (open_listener);
# read the two first lines; set PORT, MPORT and PID.
start() {
	local name=$1 line
	shift
	open_listener "$name" "$recv" "$@"
	[[ $LISTEN_ADDR == 127.0.0.1 ]] || fail "$name: listening on $LISTEN_ADDR"
	IFS= read -r -t 10 -u 5 line || fail "$name: no second line ($(cat "$TMP/$name.err"))"
	[[ $line =~ ^metrics\ on\ 127\.0\.0\.1:([0-9]+)$ ]] || fail "$name: second line '$line'"
	MPORT=${BASH_REMATCH[1]}
	[[ $PORT != 0 && $MPORT != 0 && $PORT != "$MPORT" ]] || fail "$name: ports $PORT $MPORT"
}

# scrape: GET /metrics into $TMP/page (body) and $TMP/head (headers).
scrape() {
	curl -sS --max-time 10 -D "$TMP/head" -o "$TMP/page" \
		"http://127.0.0.1:$MPORT/metrics" || fail "scrape: curl exit $?"
	grep -q '^HTTP/1.1 200 ' "$TMP/head" || fail "scrape: $(head -1 "$TMP/head")"
}

# value NAME{LABELS}: the sample's value in the last page.
value() {
	local v
	v=$(awk -v n="$1" '$1 == n { print $2; exit }' "$TMP/page")
	[[ -n $v ]] || fail "no sample $1 in: $(cat "$TMP/page")"
	echo "$v"
}

# expect NAME{LABELS} VALUE: the last page has exactly that sample.
expect() {
	grep -F -x -q -- "$1 $2" "$TMP/page" ||
		fail "want '$1 $2', page has: $(grep -F -- "$1" "$TMP/page")"
}

# promtool_ok: the last page passes `promtool check metrics` silently.
promtool_ok() {
	local out
	out=$(promtool check metrics <"$TMP/page" 2>&1)
	local rc=$?
	[[ $rc == 0 && -z $out ]] || fail "promtool (exit $rc): $out"
}

# wait_for NAME VALUE: scrape until the sample has the value (bounded).
wait_for() {
	local deadline=$((SECONDS + 10))
	while ((SECONDS < deadline)); do
		scrape
		grep -F -x -q -- "$1 $2" "$TMP/page" && return 0
	done
	fail "never '$1 $2': $(grep -F -- "$1" "$TMP/page")"
}

# ---- before any traffic -------------------------------------------------------
start m --bind 127.0.0.1 --ack-mix AA=2,AE=1,AR=1 --seed 7 --metrics 127.0.0.1:0 0
scrape
grep -q -i -x $'content-type: text/plain; version=0.0.4; charset=utf-8\r' "$TMP/head" ||
	fail "content type: $(cat "$TMP/head")"
promtool_ok
expect mllp_messages_received_total 0
expect mllp_connections_open 0
expect 'mllp_acks_sent_total{code="AA"}' 0
# Every refusal reason and the TLS families, zero included (no TLS here).
for r in allow_list max_connections tls_client_cert; do
	expect "mllp_connections_refused_total{reason=\"$r\"}" 0
done
for f in handshakes handshakes_resumed handshake_failures; do
	expect "mllp_receiver_tls_${f}_total" 0
done
# Deferred replies: none pending, none completed after a close.
expect mllp_replies_pending 0
expect mllp_replies_after_close_total 0
grep -E -q '^mllp_receiver_info\{backend="(io_uring|epoll)"\} 1$' "$TMP/page" ||
	fail "no receiver_info"
# Every family has HELP and TYPE: as many of each as families.
[[ $(grep -c '^# HELP ' "$TMP/page") == $(grep -c '^# TYPE ' "$TMP/page") ]] ||
	fail "HELP/TYPE mismatch"

# ---- during: a connection open, a partial frame held --------------------------
exec 3<>"/dev/tcp/127.0.0.1/$PORT" || fail "connect"
part=$(msg P1)
printf '%s%s' "$SB" "${part:0:12}" >&3
wait_for mllp_connections_open 1
wait_for mllp_received_bytes_total 13
[[ $(value mllp_buffered_bytes) -gt 0 ]] || fail "nothing buffered for a partial frame"
promtool_ok

# ---- 40 messages through mllp-send, ACK codes drawn from the mix -------------
N=40
for i in $(seq 1 $N); do msg "M$i"; done >"$TMP/msgs.hl7"
"$send" --json 127.0.0.1 "$PORT" "$TMP/msgs.hl7" >"$TMP/send.json" 2>"$TMP/send.err"
rc=$?
[[ $rc == 0 || $rc == 1 ]] || fail "mllp-send exit $rc: $(cat "$TMP/send.err")"
[[ $(wc -l <"$TMP/send.json") == "$N" ]] || fail "mllp-send: $(cat "$TMP/send.json")"
declare -A want
total=0
for code in AA AE AR CA CE CR; do
	want[$code]=$(grep -c "\"ack_code\":\"$code\"" "$TMP/send.json")
	total=$((total + want[$code]))
done
[[ $total == "$N" ]] || fail "ACK codes seen: $total of $N"
[[ ${want[AA]} -gt 0 && ${want[AE]} -gt 0 && ${want[AR]} -gt 0 ]] ||
	fail "the mix AA=2,AE=1,AR=1 drew: ${want[*]}"
# On the open connection: the rest of the partial frame, junk, one more
# message. 42 frames in all; the codes of the two replies are read from
# them.
printf '%s%s%s' "${part:12}" "$EB" "$CR" >&3
printf 'junk%s%s%s%s' "$SB" "$(msg X1)" "$EB" "$CR" >&3
for i in 1 2; do
	IFS= read -r -d "$EB" -t 10 -u 3 r || fail "no reply $i on the open connection"
	[[ $r =~ MSA\|([A-Z]{2})\| ]] || fail "reply $i: $r"
	want[${BASH_REMATCH[1]}]=$((want[${BASH_REMATCH[1]}] + 1))
	IFS= read -r -n 1 -t 10 -u 3 r || fail "no CR after reply $i"
done
exec 3<&-
wait_for mllp_replies_sent_total $((N + 2))
wait_for mllp_connections_open 0
expect mllp_messages_received_total $((N + 2))
expect mllp_messages_hl7_received_total $((N + 2))
expect mllp_connections_accepted_total 2
expect mllp_junk_bytes_total 4
expect 'mllp_connections_closed_total{reason="error"}' 0
expect 'mllp_frames_rejected_total{reason="too_big"}' 0
# Each code as many times as the clients saw it.
for code in AA AE AR CA CE CR; do
	expect "mllp_acks_sent_total{code=\"$code\"}" "${want[$code]}"
done
promtool_ok

# ---- 405 with Allow, 404, HEAD, 400 ------------------------------------------------
for m in POST PUT DELETE OPTIONS; do
	code=$(curl -sS --max-time 10 -X "$m" -D "$TMP/h405" -o /dev/null -w '%{http_code}' \
		"http://127.0.0.1:$MPORT/metrics")
	[[ $code == 405 ]] || fail "$m /metrics: $code"
	grep -q -i -x $'allow: GET, HEAD\r' "$TMP/h405" || fail "$m: no Allow: $(cat "$TMP/h405")"
done
for path in / /metric /metrics/ /metricsx /x/metrics; do
	code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT$path")
	[[ $code == 404 ]] || fail "GET $path: $code"
done
code=$(curl -sS --max-time 10 -I -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/metrics")
[[ $code == 200 ]] || fail "HEAD /metrics: $code"
# A GET with a body is refused before the body is read.
code=$(curl -sS --max-time 10 -X GET -d 'a body' -o "$TMP/b400" -w '%{http_code}' \
	"http://127.0.0.1:$MPORT/metrics")
[[ $code == 400 ]] || fail "GET with a body: $code"
[[ $(cat "$TMP/b400") == "bad request: GET /metrics takes no body" ]] ||
	fail "GET with a body: $(cat "$TMP/b400")"

# ---- garbage: the server survives and still answers ---------------------------
python3 - "$MPORT" <<'EOF' || fail "garbage client"
import os, socket, sys, time
port = int(sys.argv[1])
deadline = time.monotonic() + 30

def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.settimeout(10)
    return s

def drain(s):
    """Read until the server closes (bounded by the socket timeout)."""
    data = b""
    try:
        while time.monotonic() < deadline:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except (ConnectionResetError, socket.timeout):
        pass
    return data

def status(data):
    return data.split(b"\r\n", 1)[0]

# Random bytes: an error answer or a close, never a hang.
for seed in range(5):
    s = conn()
    s.sendall(os.urandom(4096) + b"\r\n\r\n")
    d = drain(s)
    assert not d or status(d).startswith(b"HTTP/1.1 4"), status(d)
    s.close()
# A header larger than the request bound (16 KiB): refused, closed.
s = conn()
try:
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n")
except (BrokenPipeError, ConnectionResetError):
    pass
d = drain(s)
assert not d or status(d).startswith(b"HTTP/1.1 4"), status(d)
s.close()
# An unfinished request kept open, and more idle connections than the
# server takes (32): a scrape beside them is still answered (on a new
# connection once the extra ones are closed).
held = [conn()]
held[0].sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
for _ in range(40):
    try:
        held.append(conn())
    except OSError:
        break
for h in held[1:]:
    h.close()
# The server may not have seen the closes yet: it turns new connections
# away (closes them) until it has; retried until the deadline.
while True:
    s = conn()
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    d = drain(s)
    s.close()
    if d or time.monotonic() > deadline:
        break
assert status(d) == b"HTTP/1.1 200 OK", status(d)
assert b"mllp_messages_received_total" in d
held[0].close()
# A request line without the end of headers, then closed: nothing to do.
s = conn()
s.sendall(b"GET /metr")
s.close()
EOF
scrape
promtool_ok
expect mllp_messages_received_total $((N + 2))
kill -0 "$PID" || fail "mllp-recv died"

# ---- the metrics port in use: exit 1, the reason ------------------------------
"$recv" --bind 127.0.0.1 --quiet --metrics "127.0.0.1:$MPORT" 0 >"$TMP/busy.out" 2>"$TMP/busy.err"
rc=$?
[[ $rc == 1 ]] || fail "metrics port in use: exit $rc"
[[ $(cat "$TMP/busy.err") == "mllp-recv: --metrics: cannot listen on 127.0.0.1:$MPORT: Address already in use" ]] ||
	fail "port in use text: $(cat "$TMP/busy.err")"

# ---- SIGTERM: both servers stop, exit 0 ---------------------------------------
kill -TERM "$PID"
wait "$PID"
rc=$?
[[ $rc == 0 ]] || fail "SIGTERM: exit $rc"
curl -s --max-time 5 "http://127.0.0.1:$MPORT/metrics" >/dev/null &&
	fail "metrics still served after exit"
exec 5<&-

# ---- --echo: no ACK family; an IPv6 metrics address ---------------------------
if [[ -e /proc/net/if_inet6 ]]; then
	open_listener e "$recv" --bind 127.0.0.1 --echo --metrics '[::1]:0' 0
	IFS= read -r -t 10 -u 5 line || fail "echo: no second line ($(cat "$TMP/e.err"))"
	[[ $line =~ ^metrics\ on\ \[::1\]:([0-9]+)$ ]] || fail "echo: second line '$line'"
	curl -sS --max-time 10 -o "$TMP/page" "http://[::1]:${BASH_REMATCH[1]}/metrics" ||
		fail "IPv6 scrape"
	grep -q acks_sent "$TMP/page" && fail "--echo page has ACK counts"
	promtool_ok
	kill -TERM "$PID"
	wait "$PID" || fail "echo: exit $?"
else
	echo "no IPv6 on this host: the [::1] case is not run"
fi
# ---- the library's pool, receiver and ACK pages as one page ----------------
MLLP_TEST_METRICS_OUT=$TMP/page "$live" >"$TMP/live.out" 2>&1 ||
	fail "test_metrics_live: $(cat "$TMP/live.out")"
grep -q '^mllp_reply_latency_seconds_count [1-9]' "$TMP/page" || fail "no pool page"
grep -q '^mllp_messages_received_total [1-9]' "$TMP/page" || fail "no receiver page"
grep -q '^mllp_acks_sent_total{code="AA"}' "$TMP/page" || fail "no ACK page"
promtool_ok
# promtool does catch a family given twice (so the checks above can fail).
cat "$TMP/page" "$TMP/page" >"$TMP/twice"
promtool check metrics <"$TMP/twice" >/dev/null 2>&1 &&
	fail "promtool took a page with every family twice"
echo "metrics: all checks passed"
