#!/usr/bin/env bash
# Process tests of the tools: mllp-send and mllp-load (options, exit codes,
# reports), and all three tools' --version, usage errors, man pages and
# bash completion.
#   tools_test.sh CASE MLLP_SEND MLLP_LOAD MLLP_RECV|none CORPUS_DIR
# Receivers listen on loopback ephemeral ports; the port is read from the
# receiver's first line "listening on ADDR:PORT" (no sleeps to sync).
# MLLP_RECV "none": a tiny Python receiver (mini_recv.py) stands in.
set -u
CASE=$1 SEND=$2 LOAD=$3 RECV=$4 CORPUS=$5
HERE=$(cd "$(dirname "$0")" && pwd)
MSGS=$CORPUS/messages
# TMP, PIDS, fail, ok, start_listener
source "$HERE/../lib.sh"

[ "$RECV" != none ] && [ ! -x "$RECV" ] && RECV=none

# start_recv ACK DELAY_MS: start a receiver answering ACK (a code or a mix
# AA=..,AE=..) after DELAY_MS; sets PORT.
start_recv() {
	local ack=$1 delay=$2
	if [ "$RECV" != none ]; then
		local a=(--ack "$ack")
		[[ $ack == *=* ]] && a=(--ack-mix "$ack")
		start_listener recv "$RECV" --bind 127.0.0.1 --quiet "${a[@]}" \
			--delay "$delay" 0 || exit 1
	else
		start_listener recv python3 "$HERE/mini_recv.py" --ack "$ack" \
			--delay "$delay" || exit 1
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
		adt_a08_utf8.hl7 | enhanced_mode.hl7)
			# MSH-15 AL: enhanced mode, the accept ACK CA.
			[ $rc -eq 0 ] || fail "$n: exit $rc: $(cat "$TMP/err")"
			jcheck "$TMP/$n.json" 'len(L) == 1' \
				'L[0]["verdict"] == "application_accept"' \
				'L[0]["ack_code"] == "CA"' 'L[0]["error"] is None' ||
				fail "$n: reply"
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
	jcheck "$TMP/adt_a01_crlf.hl7.json" 'L[0]["control_id"] == "01052901"' || fail "CRLF file id"
	# Every file in one run, 4 connections, default output.
	"$SEND" -c 4 127.0.0.1 "$PORT" "$MSGS"/* >"$TMP/all.txt" 2>"$TMP/err"
	local rc=$? lines
	lines=$(wc -l <"$TMP/all.txt")
	# 100 feed frames and one line for each of the 12 other files.
	[ "$lines" -eq 112 ] || fail "all files: $lines lines, want 112"
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
	grep -qx "mllp-load: --connections wants 1..65536, got 'x' (see --help)" "$TMP/err" ||
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
	# SIGINT stops early, still reports and exits 130: interrupt after
	# the first status line (a bounded read).
	local t0=$SECONDS
	sigint_after_line int stderr "$LOAD" -d 30 -c 4 --progress --json "$TMP/int.json"
	[ $RC -eq 130 ] || fail "SIGINT: exit $RC, want 130"
	[ $((SECONDS - t0)) -lt 10 ] || fail "SIGINT did not stop it"
	jcheck "$TMP/int.json" "$IDENT" 'J["interrupted"] == True' 'J["sent"] > 0' || fail "SIGINT report"
	grep -q "throughput" "$TMP/int.other" || fail "SIGINT: no human report"
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

# mllp-load's reports: --latency, --timeseries, --threshold, --html.
CHECK=$HERE/load_report_check.py

case_load_latency() {
	expect_rc 0 "--latency, closed loop" "$LOAD" -n 5000 -c 4 --latency --no-progress --json "$TMP/r.json"
	grep -q "^  Latency Distribution (HdrHistogram - Recorded Latency: from the first byte written to the reply)$" "$TMP/out" ||
		fail "--latency title: $(grep Distribution "$TMP/out")"
	python3 "$CHECK" latency "$TMP/out" "$TMP/r.json" || fail "--latency spectrum (closed loop)"
	expect_rc 0 "--latency, open loop" "$LOAD" -r 4000 -d 1 -c 4 --latency --no-progress --json "$TMP/r.json"
	grep -q "^  Latency Distribution (HdrHistogram - Recorded Latency: from the intended send time, corrected for coordinated omission)$" "$TMP/out" ||
		fail "--latency open-loop title"
	python3 "$CHECK" latency "$TMP/out" "$TMP/r.json" || fail "--latency spectrum (open loop)"
	expect_rc 0 "--latency --uncorrected" "$LOAD" -r 4000 -d 1 -c 4 --latency --uncorrected --no-progress --json "$TMP/r.json"
	grep -q "^  Latency Distribution (HdrHistogram - Uncorrected Latency: uncorrected: from the first byte written to the reply)$" "$TMP/out" ||
		fail "--uncorrected title"
	python3 "$CHECK" latency "$TMP/out" "$TMP/r.json" || fail "--latency spectrum (uncorrected)"
	expect_rc 64 "--uncorrected in closed loop" "$LOAD" -n 10 --uncorrected
	expect_err "--uncorrected closed" "mllp-load: --uncorrected needs --rate (closed-loop latency is already from the send) (see --help)"
	# The spectrum follows the human report: on stderr with --json -.
	expect_rc 0 "--latency --json -" "$LOAD" -n 500 -c 2 --latency --json -
	grep -q "Detailed Percentile spectrum" "$TMP/err" || fail "--latency with --json -: not on stderr"
	jcheck "$TMP/out" 'J["accepted"] == 500' || fail "--latency with --json -: stdout not JSON"
}

case_load_timeseries() {
	# A 3 s run: three lines (the last holds the drain), adding up.
	expect_rc 1 "--timeseries, closed loop, mix" "$LOAD" -d 3 -c 4 --embedded-ack AA=90,AE=5,AR=5 \
		--timeseries "$TMP/ts.jsonl" --json "$TMP/r.json" --no-progress
	python3 "$CHECK" timeseries "$TMP/ts.jsonl" "$TMP/r.json" 3 || fail "--timeseries closed loop"
	jcheck "$TMP/ts.jsonl" 'all(x["connections_up"] == 4 for x in L)' \
		'all(x["acked"]["app_errors"] > 0 and x["latency_us"]["p50"] > 0 for x in L)' ||
		fail "--timeseries connections or latency"
	expect_rc 0 "--timeseries, open loop" "$LOAD" -r 3000 -d 2 -c 4 --timeseries "$TMP/ts.jsonl" --json "$TMP/r.json" --no-progress
	python3 "$CHECK" timeseries "$TMP/ts.jsonl" "$TMP/r.json" 2 || fail "--timeseries open loop"
	jcheck "$TMP/ts.jsonl" 'all(abs(x["sent"] - 3000) <= 150 for x in L)' || fail "--timeseries open-loop rate"
	# Timeouts are counted by reason in the second they happen.
	expect_rc 2 "--timeseries, timeouts" "$LOAD" -r 200 -d 2 -c 2 -t 100 --embedded-delay 400 \
		--timeseries "$TMP/ts.jsonl" --json "$TMP/r.json" --no-progress
	python3 "$CHECK" timeseries "$TMP/ts.jsonl" "$TMP/r.json" any || fail "--timeseries timeouts"
	jcheck "$TMP/ts.jsonl" 'L[0]["latency_us"] is None' 'L[1]["failed"]["MLLP_ERR_TIMEOUT"] > 150' ||
		fail "--timeseries timeout lines"
	# --progress keeps its line per second beside the series.
	expect_rc 0 "--timeseries - with --progress" "$LOAD" -d 2.5 -c 2 --progress --timeseries - --json "$TMP/r.json"
	python3 "$CHECK" timeseries "$TMP/out" "$TMP/r.json" 3 || fail "--timeseries - (stdout)"
	[ "$(grep -cE '^ +[0-9]+\.[0-9]s  sent [0-9]+  acked [0-9]+  rate [0-9]+/s  p99 [0-9]+us  errors 0$' "$TMP/err")" -eq 2 ] ||
		fail "--progress lines: $(head -3 "$TMP/err")"
	grep -q "^  throughput" "$TMP/err" || fail "--timeseries -: human report not on stderr"
	expect_rc 64 "--json - and --timeseries -" "$LOAD" -n 1 --json - --timeseries -
	expect_err "two stdouts" "mllp-load: --json - and --timeseries - both want stdout (see --help)"
	expect_rc 2 "--timeseries unwritable" "$LOAD" -n 1 --timeseries "$TMP/no/ts.jsonl"
	expect_err "--timeseries unwritable" "mllp-load: cannot write $TMP/no/ts.jsonl: No such file or directory"
	expect_rc 2 "--html unwritable" "$LOAD" -n 1 --html "$TMP/no/r.html"
	expect_err "--html unwritable" "mllp-load: cannot write $TMP/no/r.html: No such file or directory"
}

# bad_threshold EXPR MESSAGE: --threshold EXPR is refused with MESSAGE.
bad_threshold() {
	expect_rc 64 "--threshold '$1'" "$LOAD" -n 1 --threshold "$1"
	expect_err "--threshold '$1'" "mllp-load: $2 (see --help)"
}

case_load_threshold() {
	local t
	expect_rc 0 "thresholds met" "$LOAD" -n 3000 -c 4 --no-progress --json "$TMP/r.json" \
		--threshold 'p99<10s' --threshold 'p99.9 <= 10000ms' --threshold 'max<10s' \
		--threshold 'errors<=0%' --threshold 'rate>1'
	grep -qE '^  threshold    p99<10s: ok \(p99 0\.[0-9]{6} s\)$' "$TMP/out" || fail "met line: $(grep threshold "$TMP/out")"
	grep -qE '^  threshold    rate>1: ok \(rate [0-9]+\.[0-9] msg/s\)$' "$TMP/out" || fail "rate line"
	[ -s "$TMP/err" ] && fail "thresholds met, yet stderr: $(cat "$TMP/err")"
	jcheck "$TMP/r.json" 'len(J["thresholds"]) == 5' 'all(t["ok"] for t in J["thresholds"])' \
		'J["thresholds"][0] == {"expr": "p99<10s", "value": J["latency_us"]["p99"] / 1e6, "unit": "s", "ok": True}' ||
		fail "thresholds in JSON"
	# Missed: exit 99, the report and stderr name it with the measured value.
	expect_rc 99 "p50<1us missed" "$LOAD" -n 3000 -c 4 --no-progress --json "$TMP/r.json" \
		--threshold 'p50<1us' --threshold 'rate>1'
	t=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["latency_us"]["p50"])' "$TMP/r.json")
	expect_err "p50<1us missed" "mllp-load: threshold p50<1us missed: p50 $t us"
	grep -qx "  threshold    p50<1us: MISSED (p50 $t us)" "$TMP/out" || fail "missed line: $(grep threshold "$TMP/out")"
	grep -qE '^  threshold    rate>1: ok ' "$TMP/out" || fail "rate>1 not ok beside a missed one"
	expect_rc 99 "rate missed" "$LOAD" -n 2000 -c 2 --no-progress --threshold 'rate>=1000000000'
	grep -qE '^mllp-load: threshold rate>=1000000000 missed: rate [0-9]+\.[0-9] msg/s$' "$TMP/err" || fail "rate missed: $(cat "$TMP/err")"
	# An errors threshold replaces the AE/AR rule (exit 1 without it).
	expect_rc 0 "errors<25% with 10 % AE/AR" "$LOAD" -n 4000 -c 4 --embedded-ack AA=90,AE=5,AR=5 --no-progress --threshold 'errors<25%'
	expect_rc 99 "errors<1% with 10 % AE/AR" "$LOAD" -n 4000 -c 4 --embedded-ack AA=90,AE=5,AR=5 --no-progress --threshold 'errors<1%'
	grep -qE '^mllp-load: threshold errors<1% missed: errors [0-9]+\.[0-9]{3}%$' "$TMP/err" || fail "errors missed: $(cat "$TMP/err")"
	# No reply at all: a latency threshold cannot be met.
	expect_rc 99 "p99 without replies" "$LOAD" -d 0.3 -c 1 -t 300 --no-progress --threshold 'p99<5ms' 127.0.0.1 "$(closed_port)"
	grep -qx "mllp-load: threshold p99<5ms missed: p99 none (no reply)" "$TMP/err" || fail "no reply: $(cat "$TMP/err")"
	local g="--threshold wants METRIC<VALUE or METRIC>VALUE such as p99<5ms, p50<800us, errors<0.1% or rate>50000, got"
	bad_threshold 'p99<5' "--threshold 'p99<5': a latency wants a unit: us, ms or s"
	bad_threshold 'p99<5 min' "--threshold 'p99<5 min': a latency wants a unit: us, ms or s"
	bad_threshold 'errors<0.1' "--threshold 'errors<0.1': errors wants a percentage (0..100%) such as errors<0.1%"
	bad_threshold 'errors<200%' "--threshold 'errors<200%': errors wants a percentage (0..100%) such as errors<0.1%"
	bad_threshold 'rate>5k' "--threshold 'rate>5k': rate wants messages/s such as rate>50000"
	for t in 'p99=5ms' 'p5<1ms' 'p0<1ms' 'p100.5<1ms' 'latency<5ms' 'p99<-1ms' 'p99<' '<5ms' ''; do
		bad_threshold "$t" "$g '$t'"
	done
}

# The HTML report, rendered by headless Chromium: the four charts with
# their paths after rendering, and a screenshot kept in the build tree.
case_load_html() {
	local chrome
	chrome=$(command -v chromium || command -v chromium-browser) ||
		{ echo "chromium is not installed: cannot render the HTML report (skipped)" >&2; exit 77; }
	local out=$PWD/load_report.html png=$PWD/load_report.png
	expect_rc 1 "--html" "$LOAD" -d 3 -c 4 --embedded-ack AA=90,AE=5,AR=5 --no-progress \
		--html "$out" --threshold 'rate>1'
	# Self-contained: no script, no link, no font or image to fetch.
	grep -qiE '<script|<link|src=|href=|@import|url\(|https?://[^w]' "$out" &&
		fail "the HTML report refers outside itself: $(grep -oiE '<script|<link|src=|href=|@import|url\(|https?://[^w]' "$out" | head -3)"
	local ch=(timeout 60 "$chrome" --headless=new --no-sandbox --disable-gpu
		--user-data-dir="$TMP/chrome" --no-first-run)
	"${ch[@]}" --dump-dom "file://$out" >"$TMP/dom.html" 2>"$TMP/chrome.err" ||
		fail "chromium --dump-dom: $(tail -3 "$TMP/chrome.err")"
	python3 "$CHECK" dom "$TMP/dom.html" || fail "rendered charts"
	grep -q 'threshold rate&gt;1' "$TMP/dom.html" || fail "threshold row missing"
	rm -f "$png"
	"${ch[@]}" --screenshot="$png" --window-size=1280,2000 --hide-scrollbars "file://$out" \
		>/dev/null 2>"$TMP/chrome.err" || fail "chromium --screenshot: $(tail -3 "$TMP/chrome.err")"
	python3 "$CHECK" png "$png" 1280 2000 || fail "screenshot"
	echo "HTML report: $out"
	echo "screenshot: $png"
}

SRC=$(cd "$HERE/../.." && pwd)
TOOLS=("$SEND" "$RECV" "$LOAD")
[ "$RECV" = none ] && TOOLS=("$SEND" "$LOAD")

# expect_err DESC TEXT: stderr of the last expect_rc is exactly TEXT.
expect_err() {
	[ "$(cat "$TMP/err")" = "$2" ] || fail "$1: stderr '$(cat "$TMP/err")', want '$2'"
}

case_version_help() {
	local want t name first='' uring
	want=$(sed -n 's/^#define MLLP_VERSION_STRING "\(.*\)"$/\1/p' "$SRC/include/mllp/version.h")
	[ -n "$want" ] || fail "no MLLP_VERSION_STRING in version.h"
	for t in "${TOOLS[@]}"; do
		name=$(basename "$t")
		expect_rc 0 "$name --version" "$t" --version
		[ "$(head -1 "$TMP/out")" = "$name (libmllp) $want" ] ||
			fail "$name --version first line: $(head -1 "$TMP/out")"
		grep -Eqx 'I/O backends: io_uring \(liburing [0-9]+\.[0-9]+(\.[0-9]+)?\), epoll' "$TMP/out" ||
			fail "$name --version backends: $(cat "$TMP/out")"
		grep -Eqx 'TLS: (wolfSSL [0-9]+\.[0-9]+\.[0-9]+|without TLS)' "$TMP/out" ||
			fail "$name --version TLS: $(cat "$TMP/out")"
		grep -Eqx 'Allocator: (jemalloc [0-9]+\.[0-9]+\.[0-9]+|libc)' "$TMP/out" ||
			fail "$name --version allocator: $(cat "$TMP/out")"
		# What the linked library reports, not the tool's headers: the
		# same in every tool, and as pkg-config knows liburing.
		[ -z "${first:-}" ] && first=$(cat "$TMP/out")
		[ "$(tail -n +2 "$TMP/out")" = "$(tail -n +2 <<<"$first")" ] ||
			fail "$name --version differs from the first tool's"
		if uring=$(pkg-config --modversion liburing 2>/dev/null); then
			grep -qx "I/O backends: io_uring (liburing $uring), epoll" "$TMP/out" ||
				fail "$name --version: liburing is $uring: $(cat "$TMP/out")"
		fi
		[ "$(wc -l <"$TMP/out")" -eq 4 ] || fail "$name --version: not 4 lines: $(cat "$TMP/out")"
		expect_rc 0 "$name -h" "$t" -h
		grep -q "^Usage: $name \[OPTIONS\]" "$TMP/out" || fail "$name -h: $(head -1 "$TMP/out")"
		grep -q -- "--version" "$TMP/out" || fail "$name -h lacks --version"
	done
}

case_usage_errors() {
	local u_send='Usage: mllp-send [OPTIONS] HOST PORT [FILE...]'
	local u_load='Usage: mllp-load [OPTIONS] [HOST PORT]'
	expect_rc 64 "send: unknown long option" "$SEND" --frobnicate 127.0.0.1 1
	expect_err "send --frobnicate" "mllp-send: unknown option --frobnicate"$'\n'"$u_send"
	expect_rc 64 "send: unknown short option" "$SEND" -x 127.0.0.1 1
	expect_err "send -x" "mllp-send: unknown option -x"$'\n'"$u_send"
	expect_rc 64 "send: -t without value" "$SEND" 127.0.0.1 1 -t
	expect_err "send -t" "mllp-send: option -t needs a value"$'\n'"$u_send"
	expect_rc 64 "send: --timeout without value" "$SEND" 127.0.0.1 1 --timeout
	expect_err "send --timeout" "mllp-send: option --timeout needs a value"$'\n'"$u_send"
	expect_rc 64 "send: --raw=1" "$SEND" --raw=1 127.0.0.1 1
	expect_err "send --raw=1" "mllp-send: option --raw takes no value"$'\n'"$u_send"
	expect_rc 64 "load: unknown option" "$LOAD" --frobnicate=3
	expect_err "load --frobnicate=3" "mllp-load: unknown option --frobnicate"$'\n'"$u_load"
	expect_rc 64 "load: -c without value" "$LOAD" -c
	expect_err "load -c" "mllp-load: option -c needs a value"$'\n'"$u_load"
	expect_rc 64 "load: --ca without value" "$LOAD" --ca
	expect_err "load --ca" "mllp-load: option --ca needs a value"$'\n'"$u_load"
	# One wording for the port, whatever the tool.
	expect_rc 64 "send: bad port" "$SEND" 127.0.0.1 99999
	expect_err "send port" "mllp-send: PORT wants 1..65535, got '99999' (see --help)"
	expect_rc 64 "load: bad port" "$LOAD" 127.0.0.1 0
	expect_err "load port" "mllp-load: PORT wants 1..65535, got '0' (see --help)"
	# One wording for --backend too.
	local t
	for t in "${TOOLS[@]}"; do
		expect_rc 64 "$(basename "$t"): bad --backend" "$t" --backend uring 127.0.0.1 1
		expect_err "$(basename "$t") --backend" \
			"$(basename "$t"): --backend wants auto, io_uring or epoll, got 'uring' (see --help)"
	done
	if [ "$RECV" != none ]; then
		expect_rc 64 "recv: bad port" "$RECV" 65536
		expect_err "recv port" "mllp-recv: PORT wants 0..65535, got '65536' (see --help)"
		expect_rc 64 "recv: unknown short option" "$RECV" -x
		expect_err "recv -x" "mllp-recv: unknown option -x"$'\n'"Usage: mllp-recv [OPTIONS] [PORT]"
	fi
}

case_exit_codes() {
	: >"$TMP/empty.hl7"
	printf 'hello, not HL7\n' >"$TMP/text.txt"
	expect_rc 65 "load: empty template" "$LOAD" -m "$TMP/empty.hl7" -n 1
	expect_err "load empty" "mllp-load: $TMP/empty.hl7: no message in the file"
	expect_rc 65 "load: non-HL7 template" "$LOAD" -m "$MSGS/adt_a01.hl7" -m "$TMP/text.txt" -n 1
	expect_err "load non-HL7" "mllp-load: $TMP/text.txt: message 1: not an HL7 message with MSH-7 and MSH-10"
	expect_rc 66 "load: missing template" "$LOAD" -m "$TMP/nope.hl7" -n 1
	grep -q "nope.hl7" "$TMP/err" || fail "load: missing template not named"
	expect_rc 65 "send: empty input" "$SEND" 127.0.0.1 1 "$TMP/empty.hl7"
	expect_err "send empty" "mllp-send: no message in the input"
	# An unresolvable host is named, with the resolver's reason.
	local why
	if why=$(python3 -c '
import socket, sys
try:
    socket.getaddrinfo("x.invalid", 2575)
except socket.gaierror as e:
    sys.exit(print(e.strerror) if e.errno != socket.EAI_SYSTEM else 1)
sys.exit(1)'); then
		expect_rc 2 "send: unresolvable host" "$SEND" x.invalid 2575 "$MSGS/adt_a01.hl7"
		expect_err "send unresolvable" "mllp-send: x.invalid: connect: cannot resolve 'x.invalid': $why (MLLP_ERR_BAD_ADDRESS)"
		expect_rc 2 "load: unresolvable host" "$LOAD" -n 1 --no-progress x.invalid 2575
		expect_err "load unresolvable" "mllp-load: connect: cannot resolve 'x.invalid': $why (MLLP_ERR_BAD_ADDRESS)"
	else
		echo "skip: this resolver answers for x.invalid (or fails otherwise): unresolvable host not checked"
	fi
	# Non-HL7 input names the file it came from.
	start_recv AA 0
	expect_rc 2 "send: non-HL7 file" "$SEND" --json 127.0.0.1 "$PORT" "$MSGS/adt_a01.hl7" "$TMP/text.txt"
	jcheck "$TMP/out" 'len(L) == 2' 'L[0]["verdict"] == "application_accept"' \
		'L[1]["error"].startswith("'"$TMP"'/text.txt: message 1: ")' \
		'"MLLP_ERR_NOT_HL7" in L[1]["error"]' || fail "non-HL7 file not named"
	# Too low an open-file limit for -c: said clearly, exit 2.
	expect_rc 2 "load: fd limit" bash -c 'ulimit -n 64 && exec "$0" -c 100 -n 1' "$LOAD"
	expect_err "load fd limit" "mllp-load: -c 100 needs about 264 open files, the limit is 64 (hard limit 64): raise it (ulimit -n) or use fewer connections"
	expect_rc 2 "send: fd limit" bash -c 'ulimit -n 64 && exec "$0" -c 100 127.0.0.1 1' "$SEND"
	expect_err "send fd limit" "mllp-send: -c 100 needs about 164 open files, the limit is 64 (hard limit 64): raise it (ulimit -n) or use fewer connections"
	# The soft limit is raised to the hard one: 600 embedded connections
	# need about 1264 descriptors, more than a soft limit of 1024.
	if [ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge 2000 ]; then
		expect_rc 0 "load: soft limit raised" bash -c 'ulimit -Sn 1024 && exec "$0" -c 600 -n 1200 --no-progress' "$LOAD"
	else
		echo "skip: hard open-file limit $(ulimit -Hn) < 2000: soft limit raise not checked"
	fi
	# Nothing but the open-file limit bounds -c below the pool's 65536:
	# 5000 embedded connections (about 10064 descriptors) all take part.
	if [ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge 10100 ]; then
		expect_rc 0 "load: 5000 connections" "$LOAD" -c 5000 -n 10000 --no-progress --json -
		jcheck "$TMP/out" "$IDENT" 'J["connections"] == 5000' 'J["accepted"] == 10000' ||
			fail "load: 5000 connections"
	else
		echo "skip: hard open-file limit $(ulimit -Hn) < 10100: 5000 connections not checked"
	fi
	expect_rc 64 "load: -c 65537" "$LOAD" -c 65537 -n 1
	expect_err "load -c 65537" "mllp-load: --connections wants 1..65536, got '65537' (see --help)"
}

case_send_modes() {
	start_recv AR 0
	# --raw: an AR reply is a reply: "replied", exit 0.
	expect_rc 0 "--raw, AR receiver" "$SEND" --raw --json 127.0.0.1 "$PORT" "$MSGS/adt_a01.hl7"
	jcheck "$TMP/out" 'L[0]["verdict"] == "replied"' 'L[0]["reply"].find("MSA|AR|") >= 0' || fail "--raw json"
	expect_rc 0 "--raw summary" "$SEND" --raw 127.0.0.1 "$PORT" "$MSGS/adt_a01.hl7"
	expect_err "--raw summary" "mllp-send: 1 message: 1 replied, 0 failed"
	# --async: "written", exit 0.
	expect_rc 0 "--async" "$SEND" --async 127.0.0.1 "$PORT" "$MSGS/feed_100.mllp"
	expect_err "--async summary" "mllp-send: 100 messages: 100 written, 0 failed"
	expect_rc 0 "--async --json" "$SEND" --async --json 127.0.0.1 "$PORT" "$MSGS/adt_a01.hl7"
	jcheck "$TMP/out" 'L[0]["verdict"] == "written"' || fail "--async json"
	expect_rc 2 "--async, no receiver" "$SEND" --async 127.0.0.1 "$(closed_port)" "$MSGS/adt_a01.hl7"
	grep -q "^mllp-send: 1 message: 0 written, 1 failed$" "$TMP/err" || fail "--async failure summary: $(cat "$TMP/err")"
	# Default mode: an AR is a reject.
	expect_rc 1 "AR, verified" "$SEND" 127.0.0.1 "$PORT" "$MSGS/adt_a01.hl7"
	expect_err "AR summary" "mllp-send: 1 message: 0 accepted, 0 application errors, 1 reject, 0 failed"
}

# poll_line FD DESC: a bounded read of one line from FD (10 s).
poll_line() {
	IFS= read -r -t 10 LINE <&"$1" || {
		fail "$2: no output within 10 s"
		return 1
	}
}

# sigint_after_line NAME WHICH CMD...: run CMD with its WHICH stream
# (stdout or stderr) on a fifo and the other one in $TMP/NAME.other; send
# it SIGINT after the first line on the fifo (a bounded read), the rest of
# that stream going to $TMP/NAME.rest. Sets RC to its exit status.
sigint_after_line() {
	local name=$1 which=$2 fifo=$TMP/$1.fifo pid fd
	shift 2
	mkfifo "$fifo"
	if [ "$which" = stdout ]; then
		"$@" >"$fifo" 2>"$TMP/$name.other" &
	else
		"$@" 2>"$fifo" >"$TMP/$name.other" &
	fi
	pid=$!
	exec {fd}<"$fifo"
	poll_line "$fd" "$name" && kill -INT "$pid"
	cat <&"$fd" >"$TMP/$name.rest"
	exec {fd}<&-
	wait "$pid"
	RC=$?
}

case_sigint() {
	start_recv AA 200
	local t0=$SECONDS
	sigint_after_line send stdout "$SEND" --json 127.0.0.1 "$PORT" "$MSGS/feed_100.mllp"
	[ $RC -eq 130 ] || fail "mllp-send SIGINT: exit $RC, want 130"
	[ $((SECONDS - t0)) -lt 10 ] || fail "mllp-send SIGINT did not stop it"
	grep -Eqx 'mllp-send: interrupted: 100 messages: [1-9][0-9]* accepted, 0 application errors, 0 rejects, [0-9]+ failed, [1-9][0-9]* not sent' \
		"$TMP/send.other" || fail "mllp-send SIGINT summary: $(cat "$TMP/send.other")"
	ok "mllp-send SIGINT"
	sigint_after_line load stderr "$LOAD" -d 30 -c 2 --embedded-delay 50 --progress --json -
	[ $RC -eq 130 ] || fail "mllp-load SIGINT: exit $RC, want 130"
	jcheck "$TMP/load.other" "$IDENT" 'J["interrupted"] == True' || fail "mllp-load SIGINT report"
	grep -q "throughput" "$TMP/load.rest" || fail "mllp-load SIGINT: no human report"
	ok "mllp-load SIGINT"
}

case_json_log() {
	local port
	port=$(closed_port)
	expect_rc 2 "send --json, refused" "$SEND" --json 127.0.0.1 "$port" "$MSGS/adt_a01.hl7"
	python3 -c 'import json,sys; json.load(sys.stdin)' <"$TMP/out" || fail "send --json stdout is not JSON: $(cat "$TMP/out")"
	grep -q "^mllp-send: error: " "$TMP/err" || fail "send: log line without the tool's name: $(cat "$TMP/err")"
	grep -v "^mllp-send: " "$TMP/err" | grep -q . && fail "send: stderr line without the tool's name: $(cat "$TMP/err")"
	expect_rc 2 "load --json -, refused" "$LOAD" -d 0.3 -c 2 -t 300 --no-progress --json - 127.0.0.1 "$port"
	python3 -c 'import json,sys; json.load(sys.stdin)' <"$TMP/out" || fail "load --json - stdout is not JSON"
	grep -q "^mllp-load: error: " "$TMP/err" || fail "load: log line without the tool's name: $(cat "$TMP/err")"
	# Error reasons are C symbols in capitals, a failing verdict too.
	jcheck "$TMP/out" 'list(J["errors"]) == ["ECONNREFUSED"]' || fail "load: refused reason"
	start_listener wid python3 "$HERE/mini_recv.py" --wrong-id ||
		{ fail "wrong-id receiver did not start"; return; }
	expect_rc 2 "load, wrong control ids" "$LOAD" -n 20 -c 2 --no-progress --json - 127.0.0.1 "$PORT"
	jcheck "$TMP/out" "$IDENT" 'J["errors"] == {"MLLP_BAD_MESSAGE_CONTROL_ID": 20}' || fail "load: verdict reason"
	grep -q "failed       20 (MLLP_BAD_MESSAGE_CONTROL_ID 20)" "$TMP/err" || fail "load: human reason: $(cat "$TMP/err")"
}

case_send_timeout() {
	# A receiver that accepts and never reads, and an 8 MB message.
	local port
	start_listener nr python3 "$HERE/mini_recv.py" --no-read ||
		{ fail "no-read receiver did not start"; return; }
	port=$PORT
	python3 -c '
import sys
sys.stdout.buffer.write(b"MSH|^~\\&|A|B|C|D|20240101120000||ADT^A01|BIG1|P|2.5\rOBX|1|TX|X||" + b"A" * (8 << 20) + b"\r")' >"$TMP/big.hl7"
	local t0=$SECONDS
	expect_rc 2 "send --send-timeout 500" "$SEND" --send-timeout 500 -t 3000 --json 127.0.0.1 "$port" "$TMP/big.hl7"
	jcheck "$TMP/out" 'L[0]["error"].startswith("send: ")' '"timed out" in L[0]["error"]' \
		'"MLLP_ERR_TIMEOUT" in L[0]["error"]' 'L[0]["latency_us"] is None' ||
		fail "send timeout reason"
	expect_rc 2 "load --send-timeout 500" "$LOAD" -n 1 -c 1 --size 8388608 --send-timeout 500 -t 3000 \
		--no-progress --json - 127.0.0.1 "$port"
	jcheck "$TMP/out" "$IDENT" 'J["failed"] == 1' 'J["errors"] == {"MLLP_ERR_TIMEOUT": 1}' \
		'J["duration_s"] < 2.5' || fail "load send timeout"
	[ $((SECONDS - t0)) -lt 10 ] || fail "send timeouts took $((SECONDS - t0)) s"
	expect_rc 64 "--send-timeout 0" "$SEND" --send-timeout 0 127.0.0.1 1
	expect_err "--send-timeout 0" "mllp-send: --send-timeout wants milliseconds 1..86400000, got '0' (see --help)"
}

case_load_idle() {
	# The main thread sleeps while replies take their time: 2 s at about
	# 5 messages/s cost well under 0.3 s of CPU (a spinning main thread
	# burns about a second per second).
	expect_rc 0 "slow receiver, idle main thread" "$LOAD" -c 1 -d 2 --embedded-delay 200 --no-progress --json -
	jcheck "$TMP/out" "$IDENT" 'J["accepted"] >= 5' 'J["cpu_s"] < 0.3' || fail "main thread busy while idle"
}

case_mllp2() {
	[ "$RECV" != none ] || { echo "mllp-recv is not built: --mllp2 round trip not checked" >&2; exit 77; }
	start_listener recv2 "$RECV" --bind 127.0.0.1 --quiet --mllp2 0 || exit 1
	local port2=$PORT
	# The receiver's bytes: the commit ACK block, then the ACK frame.
	python3 - "$port2" <<'PY' || fail "mllp-recv --mllp2: wrong bytes"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"\x0bMSH|^~\\&|A|B|C|D|20240101120000||ADT^A01|R2X|P|2.5\rPID|1\r\x1c\r")
buf = b""
while not buf.endswith(b"\x1c\r") or len(buf) <= 4:
    d = s.recv(4096)
    if not d:
        break
    buf += d
assert buf[:4] == b"\x0b\x06\x1c\r", buf
assert buf[4:9] == b"\x0bMSH|" and b"\rMSA|AA|R2X" in buf, buf
PY
	expect_rc 0 "send --mllp2" "$SEND" --mllp2 --json 127.0.0.1 "$port2" "$MSGS/adt_a01.hl7"
	jcheck "$TMP/out" 'len(L) == 1' 'L[0]["verdict"] == "committed"' 'L[0]["error"] is None' ||
		fail "send --mllp2 report"
	expect_rc 0 "load --mllp2 to mllp-recv --mllp2" "$LOAD" --mllp2 -n 2000 -c 4 --no-progress --json - 127.0.0.1 "$port2"
	jcheck "$TMP/out" "$IDENT" 'J["accepted"] == 2000' 'J["failed"] == 0' || fail "load --mllp2 counts"
	expect_rc 0 "load --mllp2, embedded" "$LOAD" --mllp2 -n 2000 -c 4 --no-progress --json -
	jcheck "$TMP/out" "$IDENT" 'J["accepted"] == 2000' 'J["failed"] == 0' || fail "embedded --mllp2 counts"
	# A release 1 receiver never sends a commit ACK: three attempts, then
	# the named failure.
	start_recv AA 0
	expect_rc 2 "send --mllp2 to a release 1 receiver" "$SEND" --mllp2 -t 300 --json 127.0.0.1 "$PORT" "$MSGS/adt_a01.hl7"
	jcheck "$TMP/out" 'L[0]["verdict"] == "error"' \
		'L[0]["error"] == "receive: no commit acknowledgement after 3 attempts (MLLP_ERR_TIMEOUT)"' ||
		fail "send --mllp2 timeout reason"
}

case_window() {
	[ "$RECV" != none ] || { echo "mllp-recv is not built: --window round trip not checked" >&2; exit 77; }
	start_recv AA 0
	expect_rc 0 "load --window 8" "$LOAD" --window 8 -n 4000 -c 2 --no-progress --json - 127.0.0.1 "$PORT"
	jcheck "$TMP/out" "$IDENT" 'J["accepted"] == 4000' 'J["failed"] == 0' 'J["window"] == 8' ||
		fail "load --window 8 counts"
	expect_rc 0 "load --window auto" "$LOAD" --window auto -n 2000 -c 2 --no-progress --json - 127.0.0.1 "$PORT"
	jcheck "$TMP/out" "$IDENT" 'J["accepted"] == 2000' 'J["window"] == "auto"' || fail "load --window auto"
	expect_rc 0 "load without --window" "$LOAD" -n 100 -c 1 --no-progress --json - 127.0.0.1 "$PORT"
	jcheck "$TMP/out" 'J["window"] == 1' || fail "load window default"
	# mllp-send: the output keeps the input order with a window.
	expect_rc 0 "send --window 4" "$SEND" --window 4 --json 127.0.0.1 "$PORT" \
		"$MSGS/adt_a01.hl7" "$MSGS/adt_a01.hl7" "$MSGS/adt_a01.hl7" "$MSGS/adt_a01.hl7" "$MSGS/adt_a01.hl7"
	jcheck "$TMP/out" 'len(L) == 5' '[x["index"] for x in L] == [1, 2, 3, 4, 5]' \
		'all(x["verdict"] == "application_accept" for x in L)' || fail "send --window order"
	expect_rc 64 "--window 0" "$LOAD" --window 0 -n 1
	grep -q -- "--window wants 1..1024 or auto, got '0'" "$TMP/err" || fail "--window 0 message"
	expect_rc 64 "--window x" "$SEND" --window x 127.0.0.1 "$PORT" "$MSGS/adt_a01.hl7"
	grep -q -- "--window wants 1..1024 or auto, got 'x'" "$TMP/err" || fail "--window x message"
	expect_rc 64 "-c 4096 --window 64" "$LOAD" -c 4096 --window 64 -n 1
	grep -q -- "--connections x --window may be 65536 at most" "$TMP/err" || fail "window cap message"
}

# Enhanced acknowledgement mode: mllp-send --enhanced --ack-listen against
# mllp-recv (accept ACK CA); the application ACK sent by this script to the
# listener mllp-send names on stderr, answered CA; then the application
# timeout (exit 2).
case_enhanced() {
	[ "$RECV" != none ] || { echo "mllp-recv is not built: accept ACKs (CA) not checked" >&2; exit 77; }
	start_recv AA 0
	local rport=$PORT port='' i
	"$SEND" --enhanced --ack-listen 127.0.0.1:0 --app-timeout 20000 --json \
		127.0.0.1 "$rport" "$MSGS/adt_a01.hl7" >"$TMP/enh.out" 2>"$TMP/enh.err" &
	local spid=$!
	PIDS+=("$spid")
	for ((i = 0; i < 300; i++)); do
		port=$(sed -n 's/.*listening for application acknowledgements on 127.0.0.1:\([0-9]*\)$/\1/p' "$TMP/enh.err")
		[ -n "$port" ] && break
		read -r -t 0.1 <> <(:) || true
	done
	[ -n "$port" ] || fail "send --ack-listen: no listening line ($(cat "$TMP/enh.err"))"
	# The receiving system: the application ACK (asking for an accept ACK)
	# once the accept stage's line is out.
	python3 - "$port" "$TMP/enh.out" <<'PY' || fail "application ACK not answered CA"
import socket, sys, time, json
end = time.time() + 20
while time.time() < end:
    lines = [l for l in open(sys.argv[2]) if l.strip()]
    if lines:
        break
    time.sleep(0.05)
assert json.loads(lines[0])["ack_code"] == "CA", lines
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"\x0bMSH|^~\\&|SuperOE|XYZImgCtr|MegaReg|XYZHospC|20060529090200||ACK^A01^ACK|APP1|P|2.5|||AL|NE\rMSA|AA|01052901|done\r\x1c\r")
buf = b""
while not buf.endswith(b"\x1c\r"):
    d = s.recv(4096)
    if not d:
        break
    buf += d
assert b"\rMSA|CA|APP1" in buf, buf
PY
	wait "$spid"
	local rc=$?
	[ "$rc" -eq 0 ] || fail "send --enhanced --ack-listen: exit $rc ($(cat "$TMP/enh.err"))"
	jcheck "$TMP/enh.out" 'len(L) == 2' \
		'L[0]["verdict"] == "application_accept" and L[0]["ack_code"] == "CA"' \
		'L[1]["stage"] == "application" and L[1]["control_id"] == "01052901"' \
		'L[1]["verdict"] == "application_accept" and L[1]["ack_code"] == "AA"' \
		'L[1]["text"] == "done"' || fail "send --enhanced --ack-listen report"
	grep -q "application stage: 1 accepted, 0 errors or rejects, 0 failed" "$TMP/enh.err" ||
		fail "send --ack-listen summary: $(cat "$TMP/enh.err")"
	# No application ACK: the timeout, exit 2, both stages on two lines.
	expect_rc 2 "send --ack-listen, no application ACK" "$SEND" --enhanced \
		--ack-listen 127.0.0.1:0 --app-timeout 200 127.0.0.1 "$rport" "$MSGS/adt_a01.hl7"
	grep -qx '1 01052901 application_accept CA "" [0-9.]*ms' "$TMP/out" ||
		fail "accept stage line: $(cat "$TMP/out")"
	grep -qx '1 01052901 application error - "" - (receive: no application acknowledgement within 200 ms (MLLP_ERR_TIMEOUT))' "$TMP/out" ||
		fail "application stage line: $(cat "$TMP/out")"
	# Original mode, no --enhanced: AA, one line, no application stage.
	expect_rc 0 "send --ack-listen, original mode" "$SEND" --ack-listen 127.0.0.1:0 \
		127.0.0.1 "$rport" "$MSGS/adt_a01.hl7"
	[ "$(wc -l <"$TMP/out")" -eq 1 ] && grep -q ' application_accept AA ' "$TMP/out" ||
		fail "original mode: $(cat "$TMP/out")"
	# MSH-15 NE: no accept ACK comes (mllp-recv honours it); done when
	# written, well before the reply timeout.
	printf '%s\r%s\r' 'MSH|^~\&|A|B|C|D|20240101120000||ADT^A01|NE1|P|2.5|||NE|NE' \
		'PID|1||111' >"$TMP/ne.hl7"
	expect_rc 0 "send MSH-15 NE" timeout 10 "$SEND" --timeout 30000 \
		127.0.0.1 "$rport" "$TMP/ne.hl7"
	grep -qx '1 NE1 written - "" - (accept: none requested (MSH-15 NE))' "$TMP/out" ||
		fail "MSH-15 NE line: $(cat "$TMP/out")"
	expect_rc 0 "send MSH-15 NE, JSON" timeout 10 "$SEND" --json --timeout 30000 \
		127.0.0.1 "$rport" "$TMP/ne.hl7"
	jcheck "$TMP/out" 'J["verdict"] == "written" and J["error"] is None' \
		'J["note"] == "accept: none requested (MSH-15 NE)"' || fail "MSH-15 NE JSON"
	# The summary counts NE messages apart from the accepted ones; a run
	# with accept ACKs only keeps its line.
	printf '%s\r%s\r%s\r%s\r%s\r%s\r' \
		'MSH|^~\&|A|B|C|D|20240101120000||ADT^A01|NE2|P|2.5|||NE|NE' 'PID|1||111' \
		'MSH|^~\&|A|B|C|D|20240101120000||ADT^A01|AL1|P|2.5|||AL|NE' 'PID|1||222' \
		'MSH|^~\&|A|B|C|D|20240101120000||ADT^A01|NE3|P|2.5|||NE|NE' 'PID|1||333' \
		>"$TMP/mix.hl7"
	expect_rc 0 "send 1 AL and 2 NE" timeout 10 "$SEND" --timeout 30000 \
		127.0.0.1 "$rport" "$TMP/mix.hl7"
	grep -q '^2 AL1 application_accept CA ' "$TMP/out" || fail "AL line: $(cat "$TMP/out")"
	expect_err "1 AL and 2 NE summary" "mllp-send: 3 messages: 1 accepted, 2 written without an accept ACK (MSH-15 NE/ER), 0 application errors, 0 rejects, 0 failed"
	tr '\r' '\n' <"$TMP/mix.hl7" | sed -n '3,4p' >"$TMP/al.hl7"
	expect_rc 0 "send AL only" "$SEND" 127.0.0.1 "$rport" "$TMP/al.hl7" "$TMP/al.hl7"
	expect_err "AL only summary" "mllp-send: 2 messages: 2 accepted, 0 application errors, 0 rejects, 0 failed"
	"$SEND" --help | grep -qx 'A message whose MSH-15 is NE or ER asks for no accept ACK: it counts as a' ||
		fail "--help does not say how MSH-15 NE/ER messages count"
	expect_rc 64 "--ack-listen with --raw" "$SEND" --raw --ack-listen 0 127.0.0.1 "$rport"
	grep -q "enhanced and --ack-listen exclude --raw" "$TMP/err" || fail "--raw refusal text"
}

# Ordered lanes: mllp-send --key-field / --retries (exit 3 when a key's
# messages are left unsent), mllp-load --keys.
case_keys() {
	local f=$TMP/keys.hl7
	printf '%s\r%s\r%s\r%s\r%s\r%s\r' \
		'MSH|^~\&|A|B|C|D|20240101120000||ADT^A01|K1|P|2.5' 'PID|1||111' \
		'MSH|^~\&|A|B|C|D|20240101120000||ADT^A08|K2|P|2.5' 'PID|1||111' \
		'MSH|^~\&|A|B|C|D|20240101120000||ADT^A01|K3|P|2.5' 'PID|1||222' >"$f"
	start_recv AA 0
	expect_rc 0 "send --key-field" "$SEND" -c 4 --key-field PID-3 --json 127.0.0.1 "$PORT" "$f"
	jcheck "$TMP/out" 'len(L) == 3' 'all(x["verdict"] == "application_accept" for x in L)' ||
		fail "send --key-field report"
	start_recv AE 0
	expect_rc 3 "send --key-field, a key fails" "$SEND" -c 2 --key-field PID-3 --retries 0 --json 127.0.0.1 "$PORT" "$f"
	jcheck "$TMP/out" 'len(L) == 3' 'L[0]["verdict"] == "application_error"' 'L[1]["verdict"] == "not_sent"' \
		'L[1]["error"] == "not sent: an earlier message of its key failed"' \
		'L[2]["verdict"] == "application_error"' || fail "send --key-field failure report"
	grep -q "1 not sent because an earlier message of their key failed" "$TMP/err" ||
		fail "summary of the unsent keyed messages"
	expect_rc 64 "--retries without --key-field" "$SEND" --retries 2 127.0.0.1 1 "$f"
	grep -q -- "--retries needs --key-field" "$TMP/err" || fail "--retries message"
	expect_rc 64 "bad --key-field" "$SEND" --key-field PID3 127.0.0.1 1 "$f"
	grep -qF -- "--key-field wants SEG-F[.C[.S]], e.g. PID-3 or PID-3.1, not 'PID3'" "$TMP/err" ||
		fail "--key-field message"
	expect_rc 0 "load --keys" "$LOAD" --keys 50 -n 5000 -c 8 --no-progress --json -
	jcheck "$TMP/out" 'J["accepted"] == 5000' 'J["failed"] == 0' || fail "load --keys counts"
}

# drain_run DRAIN_MS: mllp-recv holding each reply 1.5 s (--delay 1500)
# with --stop-drain DRAIN_MS; one message, SIGTERM once it is in the --out
# file (a bounded poll), then what the client got before the close
# ("ack MSA|..." or "closed", and the seconds from SIGTERM) in
# $TMP/drain.client, mllp-recv's stdout after its first line in
# $TMP/drain.stats, its stderr in $TMP/drain.err; RC its exit status,
# SECS the whole seconds from the client's close to its exit (it is
# killed after 20 s).
drain_run() {
	: >"$TMP/drain.out"
	open_listener drain "$RECV" --bind 127.0.0.1 --delay 1500 \
		--stop-drain "$1" --out "$TMP/drain.out" 0
	python3 - "$PORT" "$PID" "$TMP/drain.out" >"$TMP/drain.client" <<'PY' ||
import os, signal, socket, sys, time
port, pid, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=20)
s.sendall(b"\x0bMSH|^~\\&|A|B|C|D|20240101120000||ADT^A01|DRAIN1|P|2.5\rPID|1\r\x1c\r")
end = time.monotonic() + 10
while not open(out, "rb").read().endswith(b"\x1c\r"):
    if time.monotonic() > end:
        sys.exit("the message never reached the --out file")
    time.sleep(0.01)
t0 = time.monotonic()
os.kill(pid, signal.SIGTERM)
buf = b""
try:
    while True:
        d = s.recv(4096)
        if not d:
            break
        buf += d
except ConnectionResetError:
    pass
dt = time.monotonic() - t0
msa = [x for x in buf.split(b"\r") if x.startswith(b"MSA|")]
print("ack %s %.2f" % (msa[0].decode(), dt) if msa else "closed %.2f" % dt)
PY
		fail "drain client: $(cat "$TMP/drain.client")"
	local end=$((SECONDS + 20)) t0=$SECONDS
	while kill -0 "$PID" 2>/dev/null && [ $SECONDS -lt $end ]; do
		read -r -t 0.05 <> <(:) || true
	done
	SECS=$((SECONDS - t0))
	kill -0 "$PID" 2>/dev/null && { fail "--stop-drain $1: still running 20 s after SIGTERM"; kill -9 "$PID"; }
	wait "$PID"
	RC=$?
	cat <&5 >"$TMP/drain.stats"
	exec 5<&-
}

# --stop-drain: the replies held when SIGTERM comes still go out (or not,
# with 0 or a drain shorter than the hold), then mllp-recv exits 0.
case_recv_stop_drain() {
	[ "$RECV" != none ] || { echo "mllp-recv is not built: --stop-drain not checked" >&2; exit 77; }
	local stop_line='mllp-recv: warning: stop: 1 connection closed with replies not written after 500 ms'
	# A drain longer than the hold: the ACK, then the exit (before the
	# drain's 5 s: each connection closes once it has written all).
	drain_run 5000
	grep -Eqx 'ack MSA\|AA\|DRAIN1 [0-9.]+' "$TMP/drain.client" &&
		awk '{ exit !($3 < 4.5) }' "$TMP/drain.client" ||
		fail "--stop-drain 5000: client got $(cat "$TMP/drain.client"), want the ACK, closed when written"
	[ $RC -eq 0 ] || fail "--stop-drain 5000: exit $RC"
	[ $SECS -lt 3 ] || fail "--stop-drain 5000: exit $SECS s after the close"
	grep -qx 'connections_stop_unfinished=0' "$TMP/drain.stats" ||
		fail "--stop-drain 5000 stats: $(cat "$TMP/drain.stats")"
	grep -q 'not written' "$TMP/drain.err" && fail "--stop-drain 5000 logs: $(cat "$TMP/drain.err")"
	ok "--stop-drain 5000: ACK held 1.5 s written after SIGTERM"
	# Shorter than the hold: closed at its end, one line says so.
	drain_run 500
	grep -Eqx 'closed [0-9.]+' "$TMP/drain.client" ||
		fail "--stop-drain 500: client got $(cat "$TMP/drain.client"), want closed"
	[ $RC -eq 0 ] || fail "--stop-drain 500: exit $RC"
	[ "$(grep -c 'not written' "$TMP/drain.err")" -eq 1 ] && grep -qx "$stop_line" "$TMP/drain.err" ||
		fail "--stop-drain 500: stderr '$(cat "$TMP/drain.err")', want the line '$stop_line'"
	grep -qx 'connections_stop_unfinished=1' "$TMP/drain.stats" ||
		fail "--stop-drain 500 stats: $(cat "$TMP/drain.stats")"
	ok "--stop-drain 500: closed unfinished, said once"
	# 0: closed at once, the reply dropped.
	drain_run 0
	grep -Eqx 'closed 0\.[0-9]+' "$TMP/drain.client" ||
		fail "--stop-drain 0: client got $(cat "$TMP/drain.client"), want closed within 1 s"
	[ $RC -eq 0 ] || fail "--stop-drain 0: exit $RC"
	[ $SECS -lt 3 ] || fail "--stop-drain 0: exit $SECS s after the close"
	ok "--stop-drain 0: closed at once"
	local v
	for v in -1 x 3600001; do
		expect_rc 64 "--stop-drain $v" "$RECV" --stop-drain "$v" 0
		expect_err "--stop-drain $v" "mllp-recv: --stop-drain wants milliseconds 0..3600000, got '$v' (see --help)"
	done
}

# The long options --help prints.
help_opts() { "$1" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u; }

case_docs() {
	local t name page comp opt
	comp=$SRC/tools/completion/mllp-tools
	command -v groff >/dev/null || { echo "groff is missing: cannot check the man pages" >&2; exit 77; }
	for t in "${TOOLS[@]}"; do
		name=$(basename "$t")
		page=$SRC/tools/man/$name.1
		[ -f "$page" ] || { fail "no man page $page"; continue; }
		groff -t -man -ww -z -Tutf8 "$page" 2>"$TMP/groff.err"
		[ -s "$TMP/groff.err" ] && fail "$name.1 warnings: $(cat "$TMP/groff.err")"
		for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES; do
			grep -qx "\.SH $s" "$page" || fail "$name.1 lacks section $s"
		done
		groff -man -Tascii -rLL=300n -rHY=0 -P-cbou "$page" 2>/dev/null >"$TMP/page.txt"
		# Completion: what it offers after "--".
		bash -c 'source "$1"; COMP_WORDS=("$2" --); COMP_CWORD=1; _mllp_tools; printf "%s\n" "${COMPREPLY[@]}"' \
			_ "$comp" "$name" >"$TMP/comp.txt" || fail "completion script fails for $name"
		help_opts "$t" >"$TMP/opts.txt"
		[ "$(wc -l <"$TMP/opts.txt")" -ge 10 ] || fail "$name --help lists few options"
		while read -r opt; do
			grep -qE -- "$opt([^a-z0-9-]|\$)" "$TMP/page.txt" || fail "$name.1 lacks $opt"
			grep -qx -- "$opt" "$TMP/comp.txt" || fail "completion of $name lacks $opt"
		done <"$TMP/opts.txt"
		# Nothing offered that the tool does not know.
		while read -r opt; do
			grep -qx -- "$opt" "$TMP/opts.txt" || fail "completion of $name offers unknown $opt"
		done <"$TMP/comp.txt"
	done
	bash -c 'source "$1"; complete -p mllp-send mllp-recv mllp-load' _ "$comp" >/dev/null ||
		fail "completion does not register the three tools"
	ok "man pages and completion"
}

"case_$CASE"
if [ $FAILS -ne 0 ]; then
	echo "$FAILS failure(s)" >&2
	exit 1
fi
echo "all ok"
