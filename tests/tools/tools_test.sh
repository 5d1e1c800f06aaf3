#!/usr/bin/env bash
# Process tests of mllp-send and mllp-load (issue 6).
#   tools_test.sh CASE MLLP_SEND MLLP_LOAD MLLP_RECV|none CORPUS_DIR
# Receivers listen on loopback ephemeral ports; the port is read from the
# receiver's first line "listening on ADDR:PORT" (no sleeps to sync).
# MLLP_RECV "none": a tiny Python receiver (mini_recv.py) stands in.
set -u
CASE=$1 SEND=$2 LOAD=$3 RECV=$4 CORPUS=$5
HERE=$(cd "$(dirname "$0")" && pwd)
MSGS=$CORPUS/messages
TMP=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
FAILS=0
fail() {
	echo "FAIL: $*" >&2
	FAILS=$((FAILS + 1))
}
ok() { echo "ok: $*"; }

[ "$RECV" != none ] && [ ! -x "$RECV" ] && RECV=none

# start_recv ACK DELAY_MS: start a receiver answering ACK (a code or a mix
# AA=..,AE=..) after DELAY_MS; sets PORT.
start_recv() {
	local ack=$1 delay=$2 fifo
	fifo=$TMP/recv.$RANDOM.fifo
	mkfifo "$fifo"
	if [ "$RECV" != none ]; then
		local a=(--ack "$ack")
		[[ $ack == *=* ]] && a=(--ack-mix "$ack")
		"$RECV" --bind 127.0.0.1 --quiet "${a[@]}" --delay "$delay" 0 \
			>"$fifo" 2>"$TMP/recv.err" &
	else
		python3 "$HERE/mini_recv.py" --ack "$ack" --delay "$delay" \
			>"$fifo" 2>"$TMP/recv.err" &
	fi
	PIDS+=($!)
	local line
	exec {RFD}<"$fifo"
	IFS= read -r line <&"$RFD"
	cat <&"$RFD" >/dev/null &
	PIDS+=($!)
	PORT=${line##*:}
	if ! [[ $line == "listening on "* && $PORT =~ ^[0-9]+$ ]]; then
		echo "receiver did not start: '$line'" >&2
		cat "$TMP/recv.err" >&2
		exit 1
	fi
}

# A port nobody listens on: bound, then closed.
closed_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# jcheck FILE PYTHON-EXPR...: evaluate assertions over the JSON lines of
# FILE (list `L`) or the single object `J`.
jcheck() {
	local f=$1
	shift
	python3 - "$f" "$@" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
L = lines
J = lines[-1] if lines else None
bad = 0
for expr in sys.argv[2:]:
    try:
        okv = eval(expr)
    except Exception as e:
        okv = False
        print("  error in %s: %r" % (expr, e), file=sys.stderr)
    if not okv:
        print("  assertion failed: %s" % expr, file=sys.stderr)
        bad += 1
if bad:
    print("  data: %s" % (json.dumps(J) if len(L) < 3 else "%d lines" % len(L)), file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}

# expect_rc WANT DESC CMD...
expect_rc() {
	local want=$1 desc=$2
	shift 2
	"$@" >"$TMP/out" 2>"$TMP/err"
	local rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$desc: exit $rc, want $want"
		sed 's/^/  | /' "$TMP/err" | head -5 >&2
	else
		ok "$desc (exit $rc)"
	fi
}

case_send_corpus() {
	start_recv AA 0
	local f n
	for f in "$MSGS"/*; do
		n=$(basename "$f")
		"$SEND" --json 127.0.0.1 "$PORT" "$f" >"$TMP/$n.json" 2>"$TMP/err"
		local rc=$?
		case $n in
		feed_100.mllp)
			[ $rc -eq 0 ] || fail "$n: exit $rc"
			jcheck "$TMP/$n.json" 'len(L) == 100' \
				'[x["control_id"] for x in L] == ["FEED%06d" % i for i in range(100)]' \
				'all(x["verdict"] == "application_accept" and x["ack_code"] == "AA" for x in L)' \
				'[x["index"] for x in L] == list(range(1, 101))' ||
				fail "$n: replies"
			;;
		batch_3.hl7)
			# One message; its reply judged by MSA-1 only.
			[ $rc -le 1 ] || fail "$n: exit $rc"
			jcheck "$TMP/$n.json" 'len(L) == 1' 'L[0]["control_id"] is None' \
				'L[0]["ack_code"] in ("AA", "AR")' || fail "$n: reply"
			;;
		*)
			[ $rc -eq 0 ] || fail "$n: exit $rc: $(cat "$TMP/err")"
			jcheck "$TMP/$n.json" 'len(L) == 1' \
				'L[0]["verdict"] == "application_accept"' \
				'L[0]["ack_code"] == "AA"' 'L[0]["error"] is None' \
				'isinstance(L[0]["latency_us"], int)' \
				'isinstance(L[0]["control_id"], str) and len(L[0]["control_id"]) > 0' ||
				fail "$n: reply"
			;;
		esac
		ok "$n"
	done
	jcheck "$TMP/adt_a01_lf.hl7.json" 'L[0]["control_id"] == "01052901"' || fail "LF file id"
	# Every file in one run, 4 connections, default output.
	"$SEND" -c 4 127.0.0.1 "$PORT" "$MSGS"/* >"$TMP/all.txt" 2>"$TMP/err"
	local rc=$? lines
	lines=$(wc -l <"$TMP/all.txt")
	[ "$lines" -eq 111 ] || fail "all files: $lines lines, want 111"
	[ $rc -le 1 ] || fail "all files: exit $rc"
	# stdin, LF and CRLF text split at MSH.
	printf 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|ID1|P|2.5\r\nPID|1\r\nMSH|^~\\&|A|B|C|D|20240101||ADT^A01|ID2|P|2.5\nPID|1\n\n' |
		"$SEND" --json 127.0.0.1 "$PORT" >"$TMP/stdin.json"
	jcheck "$TMP/stdin.json" 'len(L) == 2' '[x["control_id"] for x in L] == ["ID1", "ID2"]' \
		'all(x["verdict"] == "application_accept" for x in L)' || fail "stdin split"
	ok "all files, stdin"
}

case_send_exit() {
	start_recv AA 0
	local aa=$PORT
	expect_rc 0 "AA receiver" "$SEND" 127.0.0.1 "$aa" "$MSGS/adt_a01.hl7"
	grep -q '^1 01052901 application_accept AA ' "$TMP/out" || fail "default line: $(cat "$TMP/out")"
	expect_rc 0 "--print-ack" "$SEND" --print-ack 127.0.0.1 "$aa" "$MSGS/adt_a01.hl7"
	grep -q '^MSA|AA|01052901' "$TMP/out" || fail "--print-ack shows no MSA"
	expect_rc 0 "--raw" "$SEND" --raw 127.0.0.1 "$aa" "$MSGS/adt_a01.hl7"
	grep -q '^MSA|' "$TMP/out" || fail "--raw prints no reply"
	expect_rc 0 "--async" "$SEND" --async 127.0.0.1 "$aa" "$MSGS/feed_100.mllp"
	expect_rc 0 "--backend epoll" "$SEND" --backend epoll 127.0.0.1 "$aa" "$MSGS/adt_a01.hl7"
	expect_rc 64 "--backend bogus" "$SEND" --backend bogus 127.0.0.1 "$aa"
	expect_rc 0 "--quiet" "$SEND" -q 127.0.0.1 "$aa" "$MSGS/adt_a01.hl7"
	[ -s "$TMP/out" ] && fail "--quiet printed"
	start_recv AE 0
	expect_rc 1 "AE receiver" "$SEND" --json 127.0.0.1 "$PORT" "$MSGS/adt_a01.hl7"
	jcheck "$TMP/out" 'L[0]["verdict"] == "application_error"' 'L[0]["ack_code"] == "AE"' \
		'L[0]["error"] is not None' || fail "AE json"
	start_recv AR 0
	expect_rc 1 "AR receiver" "$SEND" 127.0.0.1 "$PORT" "$MSGS/orm_o01.hl7"
	start_recv AA 3000
	expect_rc 2 "reply timeout" "$SEND" -t 200 --json 127.0.0.1 "$PORT" "$MSGS/adt_a01.hl7"
	jcheck "$TMP/out" 'L[0]["verdict"] == "error"' 'L[0]["latency_us"] is None' \
		'"TIMEOUT" in L[0]["error"]' || fail "timeout json"
	expect_rc 2 "no receiver (refused)" "$SEND" 127.0.0.1 "$(closed_port)" "$MSGS/adt_a01.hl7"
	expect_rc 66 "missing file" "$SEND" 127.0.0.1 "$aa" "$MSGS/adt_a01.hl7" "$TMP/nope.hl7"
	grep -q "nope.hl7" "$TMP/err" || fail "missing file not named"
	expect_rc 64 "no arguments" "$SEND"
	expect_rc 64 "bad port" "$SEND" 127.0.0.1 99999
	expect_rc 64 "unknown option" "$SEND" --frobnicate 127.0.0.1 1
	expect_rc 64 "-c 0" "$SEND" -c 0 127.0.0.1 1
	[ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "usage error is not one line"
	grep -qx "mllp-send: --connections wants 1..1024, got '0' (see --help)" "$TMP/err" ||
		fail "-c 0 error text: $(cat "$TMP/err")"
	expect_rc 64 "-t 0" "$SEND" -t 0 127.0.0.1 1
	grep -qx "mllp-send: --timeout wants milliseconds 1..86400000, got '0' (see --help)" "$TMP/err" ||
		fail "-t 0 error text: $(cat "$TMP/err")"
	expect_rc 0 "--help" "$SEND" --help
	for o in --connections --timeout --raw --async --print-ack --quiet --json --keep-bytes --backend; do
		grep -q -- "$o" "$TMP/out" || fail "--help lacks $o"
	done
	expect_rc 64 "load: bad usage" "$LOAD" -c x
	grep -qx "mllp-load: --connections wants 1..4096, got 'x' (see --help)" "$TMP/err" ||
		fail "load -c x error text: $(cat "$TMP/err")"
	expect_rc 64 "load: --size too small" "$LOAD" --size 10
	grep -qx "mllp-load: --size wants 64..67108864 bytes, got '10' (see --help)" "$TMP/err" ||
		fail "load --size error text: $(cat "$TMP/err")"
	expect_rc 64 "load: embedded option with HOST PORT" "$LOAD" --embedded-ack AA 127.0.0.1 1
	expect_rc 66 "load: missing template" "$LOAD" -m "$TMP/nope.hl7" -n 1
	expect_rc 0 "load --help" "$LOAD" --help
	for o in --connections --duration --count --rate --ramp --message --size --timeout --json --progress --embedded-ack --embedded-delay --backend; do
		grep -q -- "$o" "$TMP/out" || fail "load --help lacks $o"
	done
}

KEYS='all(k in J for k in ["duration_s","connections","sent","accepted","app_errors","app_rejects","failed","errors","throughput_msgs_per_s","throughput_mb_per_s","latency_us","reconnects","backend"])'
LAT='all(k in J["latency_us"] for k in ["p50","p90","p99","p999","max"])'
IDENT='J["sent"] == J["accepted"] + J["app_errors"] + J["app_rejects"] + J["failed"]'

case_load_embedded() {
	expect_rc 0 "embedded -n 20000" "$LOAD" -n 20000 -c 16 --json -
	jcheck "$TMP/out" "$KEYS" "$LAT" "$IDENT" 'J["sent"] == 20000' \
		'J["accepted"] == 20000' 'J["connections"] == 16' 'J["errors"] == {}' \
		'J["throughput_msgs_per_s"] > 0' 'J["latency_us"]["p50"] <= J["latency_us"]["p99"] <= J["latency_us"]["max"]' ||
		fail "embedded report"
	grep -q "throughput" "$TMP/err" || fail "no human report on stderr with --json -"
	expect_rc 0 "embedded --backend epoll" "$LOAD" -n 2000 -c 4 --backend epoll --json -
	jcheck "$TMP/out" "$IDENT" 'J["backend"] == "epoll"' 'J["accepted"] == 2000' || fail "epoll report"
	# Templates, a synthetic size, the ramp and a report file.
	expect_rc 0 "templates" "$LOAD" -n 2000 -c 4 -m "$MSGS/adt_a01.hl7" -m "$MSGS/feed_100.mllp" --json "$TMP/t.json"
	jcheck "$TMP/t.json" "$IDENT" 'J["accepted"] == 2000' || fail "templates report"
	expect_rc 0 "--size 20000" "$LOAD" -n 500 -c 4 --size 20000 --json -
	jcheck "$TMP/out" 'abs(J["message_bytes"] - 20000) < 200' 'J["accepted"] == 500' || fail "--size"
	expect_rc 0 "closed loop --ramp" "$LOAD" -d 1 --ramp 0.5 -c 8 --json -
	jcheck "$TMP/out" "$IDENT" 'J["accepted"] > 0' 'J["failed"] == 0' || fail "ramp"
	# SIGINT stops early and still reports: interrupt after the first
	# status line.
	mkfifo "$TMP/int.fifo"
	local t0=$SECONDS
	"$LOAD" -d 30 -c 4 --progress --json "$TMP/int.json" >"$TMP/int.txt" 2>"$TMP/int.fifo" &
	local lp=$! line
	exec {IFD}<"$TMP/int.fifo"
	IFS= read -r line <&"$IFD"
	kill -INT "$lp"
	cat <&"$IFD" >/dev/null
	wait "$lp"
	local rc=$?
	[ $rc -eq 0 ] || fail "SIGINT: exit $rc"
	[ $((SECONDS - t0)) -lt 10 ] || fail "SIGINT did not stop it"
	jcheck "$TMP/int.json" "$IDENT" 'J["interrupted"] == True' 'J["sent"] > 0' || fail "SIGINT report"
	grep -q "throughput" "$TMP/int.txt" || fail "SIGINT: no human report"
	ok "SIGINT"
}

case_load_mix() {
	expect_rc 1 "embedded mix 90/5/5" "$LOAD" -n 20000 -c 16 --embedded-ack AA=90,AE=5,AR=5 --json -
	jcheck "$TMP/out" "$IDENT" 'J["failed"] == 0' \
		'abs(J["app_errors"] - 1000) < 250' 'abs(J["app_rejects"] - 1000) < 250' \
		'abs(J["accepted"] - 18000) < 500' || fail "embedded mix counts"
	expect_rc 1 "embedded AE" "$LOAD" -n 1000 -c 4 --embedded-ack AE --json -
	jcheck "$TMP/out" 'J["app_errors"] == 1000' || fail "embedded AE counts"
	if [ "$RECV" != none ]; then
		start_recv AA=90,AE=5,AR=5 0
		expect_rc 1 "mllp-recv mix 90/5/5" "$LOAD" -n 20000 -c 16 --json - 127.0.0.1 "$PORT"
		jcheck "$TMP/out" "$KEYS" "$IDENT" 'J["failed"] == 0' \
			'abs(J["app_errors"] - 1000) < 250' 'abs(J["app_rejects"] - 1000) < 250' ||
			fail "mllp-recv mix counts"
		start_recv AA 0
		expect_rc 0 "mllp-recv AA" "$LOAD" -n 20000 -c 16 --json - 127.0.0.1 "$PORT"
		jcheck "$TMP/out" "$IDENT" 'J["accepted"] == 20000' || fail "mllp-recv AA counts"
	fi
}

case_load_rate() {
	expect_rc 0 "open loop 5000/s for 2 s" "$LOAD" -r 5000 -d 2 -c 16 --json -
	jcheck "$TMP/out" "$IDENT" 'J["mode"] == "open"' 'J["failed"] == 0' \
		'abs(J["sent"] - 10000) <= 500' \
		'abs(J["throughput_msgs_per_s"] - 5000) <= 250' || fail "rate not held within 5 %"
	expect_rc 0 "open loop -n with ramp" "$LOAD" -r 4000 -n 3000 --ramp 0.5 -c 8 --json -
	jcheck "$TMP/out" "$IDENT" 'J["sent"] == 3000' 'J["accepted"] == 3000' || fail "open loop count"
}

case_load_timeout() {
	local t0=$SECONDS
	expect_rc 2 "embedded delay 3000 ms, timeout 200 ms" \
		"$LOAD" -d 1 -c 4 -t 200 --embedded-delay 3000 --json -
	jcheck "$TMP/out" "$IDENT" 'J["accepted"] == 0' 'J["failed"] > 0' \
		'J["errors"].get("MLLP_ERR_TIMEOUT", 0) > 0' 'J["duration_s"] < 2.5' ||
		fail "timeouts not counted"
	start_recv AA 5000
	expect_rc 2 "receiver delay 5000 ms, timeout 300 ms, open loop" \
		"$LOAD" -d 1 -r 200 -c 4 -t 300 --json - 127.0.0.1 "$PORT"
	jcheck "$TMP/out" "$IDENT" 'J["failed"] == J["sent"]' 'J["sent"] == 200' \
		'J["errors"].get("MLLP_ERR_TIMEOUT", 0) > 0' 'J["duration_s"] < 2.5' ||
		fail "open loop timeouts"
	expect_rc 2 "no receiver" "$LOAD" -d 0.5 -c 2 -t 300 --json - 127.0.0.1 "$(closed_port)"
	jcheck "$TMP/out" "$IDENT" 'J["failed"] == J["sent"]' 'J["duration_s"] < 2.0' || fail "no receiver"
	[ $((SECONDS - t0)) -lt 12 ] || fail "runs did not end on time ($((SECONDS - t0)) s)"
}

"case_$CASE"
if [ $FAILS -ne 0 ]; then
	echo "$FAILS failure(s)" >&2
	exit 1
fi
echo "all ok"
