#!/usr/bin/env bash
# Process tests of mllp-bridge against a real nats-server (JetStream, file
# storage in a scratch directory, loopback, ephemeral ports).
#   bridge_test.sh CASE MLLP_BRIDGE MLLP_SEND MLLP_RECV
# Skipped (exit 77) only when nats-server is not installed. Every wait is
# bounded; processes started here are killed at exit.
set -u
CASE=$1 BRIDGE=$2 SEND=$3 RECV=$4
HERE=$(cd "$(dirname "$0")" && pwd)
# TMP, PIDS, fail, ok, start_listener
source "$HERE/../lib.sh"

# The man page and the completion know every option of --help.
case_docs() {
	local src=$HERE/../.. opt
	local page=$src/tools/man/mllp-bridge.1 comp=$src/tools/completion/mllp-tools
	command -v groff >/dev/null || { echo "SKIP: groff is missing: cannot check the man page"; exit 77; }
	groff -t -man -ww -z -Tutf8 "$page" 2>"$TMP/groff.err"
	[ -s "$TMP/groff.err" ] && fail "mllp-bridge.1 warnings: $(cat "$TMP/groff.err")"
	groff -man -Tascii -rLL=300n -rHY=0 -P-cbou "$page" 2>/dev/null >"$TMP/page.txt"
	bash -c 'source "$1"; _mllp_tools_opts mllp-bridge' _ "$comp" | tr ' ' '\n' | grep . >"$TMP/comp.txt"
	"$BRIDGE" --help | grep -o -- '--[a-z][a-z-]*' | sort -u >"$TMP/opts.txt"
	[ "$(wc -l <"$TMP/opts.txt")" -ge 30 ] || fail "--help lists few options"
	while read -r opt; do
		grep -qE -- "$opt([^a-z0-9-]|\$)" "$TMP/page.txt" || fail "mllp-bridge.1 lacks $opt"
		grep -qx -- "$opt" "$TMP/comp.txt" || fail "completion lacks $opt"
	done <"$TMP/opts.txt"
	while read -r opt; do
		grep -qx -- "$opt" "$TMP/opts.txt" || fail "completion offers unknown $opt"
	done <"$TMP/comp.txt"
	bash -c 'source "$1"; complete -p mllp-bridge' _ "$comp" >/dev/null ||
		fail "completion does not register mllp-bridge"
	ok "man page and completion"
}
if [ "$CASE" = docs ]; then
	case_docs
	[ "$FAILS" -eq 0 ] || exit 1
	exit 0
fi

if ! command -v nats-server >/dev/null; then
	echo "SKIP: nats-server is not installed (Debian: apt-get install nats-server)"
	exit 77
fi

# wait_for DESC SECONDS CMD...: poll CMD until it succeeds; fail after
# SECONDS.
wait_for() {
	local desc=$1 secs=$2 end
	shift 2
	end=$((SECONDS + secs))
	until "$@"; do
		if [ $SECONDS -ge $end ]; then
			fail "timed out after ${secs}s waiting for $desc"
			return 1
		fi
		sleep 0.05
	done
}

# client_port FILE: the client port in a nats-server ports file.
client_port() {
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["nats"][0].rsplit(":", 1)[1])' "$1"
}

# start_nats [PORT]: a JetStream server on PORT (default ephemeral) with
# its store in $TMP/js; sets NATS_PORT, NATS_URL, NATS_PID.
start_nats() {
	local port=${1:--1} f
	rm -f "$TMP"/ports/*.ports "$TMP/nats.log"
	mkdir -p "$TMP/ports"
	nats-server -js -p "$port" -sd "$TMP/js" -a 127.0.0.1 \
		--ports_file_dir "$TMP/ports" -l "$TMP/nats.log" &
	NATS_PID=$!
	PIDS+=("$NATS_PID")
	wait_for "nats-server to start" 30 \
		grep -qs "Server is ready" "$TMP/nats.log" || exit 1
	NATS_PORT=$(client_port "$TMP"/ports/*.ports)
	NATS_URL=nats://127.0.0.1:$NATS_PORT
}

# run_tool NAME FIRST CMD...: start CMD in the background with its stdout
# in $TMP/NAME.out and its stderr in $TMP/NAME.err; wait (30 s at most)
# for a first line starting with FIRST. Sets TOOL_PID; for a listener
# also PORT.
run_tool() {
	local name=$1 first=$2 line
	shift 2
	"$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
	TOOL_PID=$!
	PIDS+=("$TOOL_PID")
	if ! wait_for "$name: '$first'" 30 grep -qs "^$first" "$TMP/$name.out"; then
		cat "$TMP/$name.err" >&2
		exit 1
	fi
	line=$(head -1 "$TMP/$name.out")
	PORT=${line##*:}
}

# stop_tool PID: SIGTERM, then wait for it (30 s); sets RC.
stop_tool() {
	local pid=$1 end=$((SECONDS + 30))
	kill -TERM "$pid" 2>/dev/null
	while kill -0 "$pid" 2>/dev/null; do
		if [ $SECONDS -ge $end ]; then
			fail "pid $pid did not exit within 30 s of SIGTERM"
			kill -9 "$pid"
			break
		fi
		sleep 0.05
	done
	wait "$pid"
	RC=$?
}

# gen N KEYS FILE: N messages, MSH-10 M<i>, PID-3 P<i mod KEYS>.
gen() {
	python3 - "$@" <<'EOF'
import sys
n, keys, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    for i in range(n):
        f.write("MSH|^~\\&|APP|FAC|RAPP|RFAC|20260101000000||ADT^A01|M%d|P|2.5\r"
                "PID|1||P%d||DOE^JOHN\r" % (i, i % keys))
EOF
}

# check_out FILE N KEYS DUPS_OK: every M<i> (i < N) delivered; per key, the
# first deliveries in sending order; exactly once unless DUPS_OK is 1.
check_out() {
	python3 - "$@" <<'EOF'
import sys, re
path, n, keys, dups_ok = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
data = open(path, "rb").read().decode()
frames = [f.strip("\x0b\x1c\r") for f in data.split("\x1c\r") if f.strip()]
ids = []
for fr in frames:
    m = re.search(r"\|M(\d+)\|P\|", fr)
    ids.append(int(m.group(1)))
seen = set(ids)
missing = [i for i in range(n) if i not in seen]
bad = 0
if missing:
    print("  missing %d, e.g. %s" % (len(missing), missing[:10]), file=sys.stderr); bad = 1
dups = len(ids) - len(seen)
if dups and not dups_ok:
    print("  %d duplicates" % dups, file=sys.stderr); bad = 1
first = {}
order = {}
for i in ids:
    if i in first:
        continue
    first[i] = True
    order.setdefault(i % keys, []).append(i)
for k, v in order.items():
    if v != sorted(v):
        print("  key P%d out of order: %s" % (k, v[:20]), file=sys.stderr); bad = 1
        break
print("delivered %d frames, %d distinct, %d duplicates" % (len(ids), len(seen), dups))
sys.exit(bad)
EOF
}

# frames FILE: how many MLLP frames FILE holds.
frames() { tr -cd '\034' <"$1" 2>/dev/null | wc -c; }
# has_frames FILE N: FILE holds at least N frames (for wait_for).
has_frames() { [ "$(frames "$1")" -ge "$2" ]; }

# has_ids FILE N: FILE holds every M0..M<N-1> at least once.
has_ids() {
	python3 -c '
import re, sys
d = open(sys.argv[1], "rb").read().decode()
s = set(re.findall(r"\|M(\d+)\|P\|", d))
sys.exit(0 if len(s) >= int(sys.argv[2]) else 1)' "$1" "$2" 2>/dev/null
}

# has_total FILE1 FILE2 N: the two files hold N frames together.
has_total() { [ $(($(frames "$1") + $(frames "$2"))) -ge "$3" ]; }

# counter FILE NAME: a counter from a bridge's exit output.
counter() { sed -n "s/^$2=//p" "$1"; }

start_in() {
	run_tool "${IN_NAME:-in}" "listening on" "$BRIDGE" in --nats "$NATS_URL" \
		--create-stream --listen 0 --bind 127.0.0.1 "$@"
	IN_PID=$TOOL_PID IN_PORT=$PORT
}

start_out() {
	run_tool "${OUT_NAME:-out}" "consuming" "$BRIDGE" out --nats "$NATS_URL" \
		--consumer feed --create-consumer "$@"
	OUT_PID=$TOOL_PID
}

start_recv() {
	run_tool recv "listening on" "$RECV" --bind 127.0.0.1 --quiet "$@" 0
	RECV_PID=$TOOL_PID RECV_PORT=$PORT
}

# mllp-send -> in -> JetStream -> out -> mllp-recv, N messages over KEYS
# keys.
case_e2e() {
	local n=${BRIDGE_E2E_N:-100000} keys=50 t0
	start_nats
	start_recv --out "$TMP/recv.hl7"
	start_in
	start_out --to "127.0.0.1:$RECV_PORT" -c 4 --key-field PID-3
	gen "$n" "$keys" "$TMP/msgs.hl7"
	t0=$SECONDS
	"$SEND" -q -c 1 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7" ||
		fail "mllp-send: exit $? ($(tail -2 "$TMP/in.err"))"
	wait_for "$n messages at the receiver" 240 \
		has_frames "$TMP/recv.hl7" "$n"
	ok "$n messages through the bridge in $((SECONDS - t0)) s"
	stop_tool "$OUT_PID"
	[ "$RC" -eq 0 ] || fail "out: exit $RC after SIGTERM"
	[ "$(counter "$TMP/out.out" delivered)" = "$n" ] ||
		fail "out: delivered=$(counter "$TMP/out.out" delivered), want $n"
	stop_tool "$IN_PID"
	[ "$RC" -eq 0 ] || fail "in: exit $RC after SIGTERM"
	[ "$(counter "$TMP/in.out" stored)" = "$n" ] ||
		fail "in: stored=$(counter "$TMP/in.out" stored), want $n"
	check_out "$TMP/recv.hl7" "$n" "$keys" 0 || fail "delivery check"
}

# A resent message (same MSH-3, MSH-4, MSH-10) is stored once and still
# gets AA.
case_dedupe() {
	start_nats
	start_in
	gen 3 3 "$TMP/msgs.hl7"
	"$SEND" -q 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7" || fail "first send: exit $?"
	"$SEND" -q 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7" || fail "resend: exit $?"
	stop_tool "$IN_PID"
	[ "$(counter "$TMP/in.out" stored)" = 3 ] || fail "stored=$(counter "$TMP/in.out" stored), want 3"
	[ "$(counter "$TMP/in.out" duplicates)" = 3 ] ||
		fail "duplicates=$(counter "$TMP/in.out" duplicates), want 3"
	start_recv --out "$TMP/recv.hl7" --count 3
	start_out --to "127.0.0.1:$RECV_PORT"
	wait_for "3 messages at the receiver" 30 \
		has_frames "$TMP/recv.hl7" 3
	stop_tool "$OUT_PID"
	check_out "$TMP/recv.hl7" 3 3 0 || fail "each message delivered once"
	ok "a resent message is stored once, both sends got AA"
}

# JetStream down or stopped: the sender gets AE with the reason (or no
# reply), never AA.
case_js_down() {
	start_nats
	start_in --publish-timeout 500
	gen 1 1 "$TMP/one.hl7"
	"$SEND" 127.0.0.1 "$IN_PORT" "$TMP/one.hl7" >"$TMP/send.out" 2>&1 ||
		fail "send with NATS up: exit $?"
	# Frozen server: connected, but no PubAck.
	kill -STOP "$NATS_PID"
	"$SEND" 127.0.0.1 "$IN_PORT" "$TMP/one.hl7" >"$TMP/send.out" 2>&1
	local rc=$?
	kill -CONT "$NATS_PID"
	[ $rc -eq 1 ] || fail "frozen JetStream: mllp-send exit $rc, want 1 (AE)"
	grep -q "AE.*not stored: JetStream did not acknowledge within 500 ms (--publish-timeout)" \
		"$TMP/send.out" || fail "frozen JetStream: $(cat "$TMP/send.out")"
	ok "no PubAck within --publish-timeout: AE with the reason"
	kill -9 "$NATS_PID"
	wait "$NATS_PID" 2>/dev/null
	wait_for "the bridge to see NATS gone" 30 grep -q "NATS connection lost" "$TMP/in.err"
	"$SEND" 127.0.0.1 "$IN_PORT" "$TMP/one.hl7" >"$TMP/send.out" 2>&1
	rc=$?
	[ $rc -eq 1 ] || fail "NATS down: mllp-send exit $rc, want 1 (AE)"
	grep -q "AE.*not stored: NATS is not connected (JetStream unavailable)" \
		"$TMP/send.out" || fail "NATS down: $(cat "$TMP/send.out")"
	ok "NATS down: AE 'not stored: NATS is not connected'"
	stop_tool "$IN_PID"
	[ "$RC" -eq 0 ] || fail "in: exit $RC after SIGTERM"
	[ "$(counter "$TMP/in.out" stored)" = 1 ] || fail "stored=$(counter "$TMP/in.out" stored), want 1"
}

# --on-unavailable no-reply with NATS down: no answer at all.
case_no_reply() {
	start_nats
	start_in --on-unavailable no-reply
	kill -9 "$NATS_PID"
	wait "$NATS_PID" 2>/dev/null
	wait_for "the bridge to see NATS gone" 30 grep -q "NATS connection lost" "$TMP/in.err"
	gen 1 1 "$TMP/one.hl7"
	"$SEND" -t 1000 127.0.0.1 "$IN_PORT" "$TMP/one.hl7" >"$TMP/send.out" 2>&1
	local rc=$?
	[ $rc -eq 2 ] || fail "no-reply: mllp-send exit $rc, want 2 (timeout)"
	grep -q "AA" "$TMP/send.out" && fail "no-reply: an AA: $(cat "$TMP/send.out")"
	ok "--on-unavailable no-reply: no answer, the sender times out"
	stop_tool "$IN_PID"
	[ "$RC" -eq 0 ] || fail "in: exit $RC after SIGTERM"
}

# kill -9 the out-bridge mid-run, start another on the same consumer:
# every message delivered at least once, duplicates within the window.
case_crash_out() {
	local n=2000 keys=20 window=50
	start_nats
	# Replies held 10 ms: the run lasts long enough to be cut.
	start_recv --out "$TMP/recv.hl7" --delay 10
	start_in
	gen "$n" "$keys" "$TMP/msgs.hl7"
	"$SEND" -q 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7" || fail "mllp-send: exit $?"
	start_out --to "127.0.0.1:$RECV_PORT" -c 4 --ack-wait 2 \
		--max-ack-pending "$window"
	wait_for "some messages delivered" 60 \
		has_frames "$TMP/recv.hl7" 300
	kill -9 "$OUT_PID"
	wait "$OUT_PID" 2>/dev/null
	local before
	before=$(frames "$TMP/recv.hl7")
	OUT_NAME=out2 start_out --to "127.0.0.1:$RECV_PORT" -c 4
	wait_for "every message delivered" 120 has_ids "$TMP/recv.hl7" "$n"
	stop_tool "$OUT_PID"
	[ "$RC" -eq 0 ] || fail "second out: exit $RC"
	check_out "$TMP/recv.hl7" "$n" "$keys" 1 >"$TMP/check.out" || fail "delivery check after the crash"
	cat "$TMP/check.out"
	local dups
	dups=$(sed -n 's/.* \([0-9]*\) duplicates$/\1/p' "$TMP/check.out")
	[ "$dups" -le "$window" ] || fail "$dups duplicates, more than the window $window"
	ok "killed after $before deliveries: nothing lost, $dups duplicates (window $window)"
}

# AR from the receiver: the message goes to the dead-letter subject with
# the ACK, and is not redelivered; a second bridge reads the dead letters.
case_dead_letter() {
	start_nats
	start_recv --ack AR
	start_in
	gen 5 5 "$TMP/msgs.hl7"
	"$SEND" -q 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7" || fail "mllp-send: exit $?"
	start_out --to "127.0.0.1:$RECV_PORT" --ack-wait 2
	local dl_recv
	run_tool dlrecv "listening on" "$RECV" --bind 127.0.0.1 --quiet \
		--out "$TMP/dl.hl7" 0
	dl_recv=$PORT
	OUT_NAME=dl run_tool dl "consuming" "$BRIDGE" out --nats "$NATS_URL" \
		--consumer dl --create-consumer --filter 'hl7.dead.>' \
		--to "127.0.0.1:$dl_recv"
	local dl_pid=$TOOL_PID
	wait_for "5 dead letters delivered" 60 \
		has_frames "$TMP/dl.hl7" 5
	stop_tool "$OUT_PID"
	[ "$(counter "$TMP/out.out" dead_lettered)" = 5 ] ||
		fail "dead_lettered=$(counter "$TMP/out.out" dead_lettered), want 5"
	[ "$(counter "$TMP/out.out" delivered)" = 0 ] || fail "delivered=$(counter "$TMP/out.out" delivered)"
	stop_tool "$dl_pid"
	check_out "$TMP/dl.hl7" 5 5 0 || fail "dead letters"
	ok "AR: 5 messages dead-lettered, not redelivered"
}

# Start-up errors name what is missing; bad options exit 64.
case_errors() {
	start_nats
	"$BRIDGE" in --nats "$NATS_URL" --stream NOPE --listen 0 >"$TMP/o" 2>"$TMP/e"
	local rc=$?
	[ $rc -eq 1 ] || fail "missing stream: exit $rc, want 1"
	grep -qx "mllp-bridge: stream 'NOPE' not found at $NATS_URL (create it with --create-stream, or name another with --stream)" \
		"$TMP/e" || fail "missing stream: $(cat "$TMP/e")"
	"$BRIDGE" in --nats "$NATS_URL" --create-stream --listen 0 \
		--bind 127.0.0.1 >"$TMP/o" 2>"$TMP/e" &
	local pid=$!
	PIDS+=("$pid")
	wait_for "stream created" 30 grep -q "^listening on" "$TMP/o"
	stop_tool "$pid"
	"$BRIDGE" out --nats "$NATS_URL" --consumer nobody --to 127.0.0.1:1 >"$TMP/o" 2>"$TMP/e"
	rc=$?
	[ $rc -eq 1 ] || fail "missing consumer: exit $rc, want 1"
	grep -qx "mllp-bridge: consumer 'nobody' not found on stream 'HL7' (create it with --create-consumer)" \
		"$TMP/e" || fail "missing consumer: $(cat "$TMP/e")"
	local port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
	"$BRIDGE" in --nats "nats://127.0.0.1:$port" --listen 0 >"$TMP/o" 2>"$TMP/e"
	rc=$?
	[ $rc -eq 1 ] || fail "NATS unreachable: exit $rc, want 1"
	grep -q "^mllp-bridge: cannot connect to NATS at nats://127.0.0.1:$port: " "$TMP/e" ||
		fail "NATS unreachable: $(cat "$TMP/e")"
	"$BRIDGE" in --subject 'hl7.{MSH-9.1' >"$TMP/o" 2>"$TMP/e"
	rc=$?
	[ $rc -eq 64 ] || fail "bad template: exit $rc"
	grep -qx "mllp-bridge: --subject 'hl7.{MSH-9.1': '{' without '}' at offset 4 (see --help)" \
		"$TMP/e" || fail "bad template: $(cat "$TMP/e")"
	"$BRIDGE" in --consumer x >"$TMP/o" 2>"$TMP/e"
	rc=$?
	[ $rc -eq 64 ] && grep -qx "mllp-bridge: --consumer is an option of 'out' (see --help)" "$TMP/e" ||
		fail "out option to in: exit $rc: $(cat "$TMP/e")"
	"$BRIDGE" out --to 127.0.0.1:1 >"$TMP/o" 2>"$TMP/e"
	rc=$?
	[ $rc -eq 64 ] && grep -qx "mllp-bridge: out needs --consumer NAME (see --help)" "$TMP/e" ||
		fail "out without --consumer: exit $rc: $(cat "$TMP/e")"
	"$BRIDGE" out --consumer c --to 127.0.0.1:1 --lease 3 >"$TMP/o" 2>"$TMP/e"
	rc=$?
	[ $rc -eq 64 ] && grep -qx "mllp-bridge: --lease goes with --exclusive (see --help)" "$TMP/e" ||
		fail "--lease without --exclusive: exit $rc: $(cat "$TMP/e")"
	"$BRIDGE" out --consumer c --to 127.0.0.1:1 --exclusive --lease 0 >"$TMP/o" 2>"$TMP/e"
	rc=$?
	[ $rc -eq 64 ] && grep -qx "mllp-bridge: --lease wants 1..3600 s, got '0' (see --help)" "$TMP/e" ||
		fail "--lease 0: exit $rc: $(cat "$TMP/e")"
	"$BRIDGE" in --exclusive >"$TMP/o" 2>"$TMP/e"
	rc=$?
	[ $rc -eq 64 ] && grep -qx "mllp-bridge: --exclusive is an option of 'out' (see --help)" "$TMP/e" ||
		fail "--exclusive to in: exit $rc: $(cat "$TMP/e")"
	ok "start-up errors"
}

# Subjects from the template: fields, escaping, {partition}.
case_subject() {
	start_nats
	start_in --subject 'hl7.in.{MSH-9.1}.{MSH-4}.p{partition}' --partitions 4
	printf 'MSH|^~\\&|APP|My Fac.1|R|RF|20260101||ORU^R01|S1|P|2.5\rPID|1||X1\r' >"$TMP/m.hl7"
	"$SEND" -q 127.0.0.1 "$IN_PORT" "$TMP/m.hl7" || fail "send: exit $?"
	start_recv --out "$TMP/recv.hl7"
	local p
	p=$(python3 -c 'import hashlib; print(int(hashlib.sha256(b"X1").hexdigest()[:8], 16) % 4)')
	start_out --to "127.0.0.1:$RECV_PORT" --filter "hl7.in.ORU.My%20Fac%2E1.p$p"
	wait_for "the message on subject hl7.in.ORU.My%20Fac%2E1.p$p" 30 \
		has_frames "$TMP/recv.hl7" 1
	stop_tool "$OUT_PID"
	stop_tool "$IN_PID"
	ok "subject hl7.in.ORU.My%20Fac%2E1.p$p"
}

# The receiver dies mid-run and comes back on the same port: the lanes
# retry with backoff, nothing is lost, per-key order is kept.
case_recv_down() {
	local n=600 keys=10
	start_nats
	start_recv --out "$TMP/recv.hl7" --delay 5
	local rport=$RECV_PORT
	start_in
	gen "$n" "$keys" "$TMP/msgs.hl7"
	"$SEND" -q 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7" || fail "mllp-send: exit $?"
	start_out --to "127.0.0.1:$rport" -c 2 --ack-wait 3 --retry-max 1
	wait_for "some messages delivered" 60 has_frames "$TMP/recv.hl7" 100
	kill -9 "$RECV_PID"
	wait "$RECV_PID" 2>/dev/null
	wait_for "the bridge to report the receiver gone" 30 \
		grep -qs "127.0.0.1:$rport" "$TMP/out.err"
	run_tool recv2 "listening on" "$RECV" --bind 127.0.0.1 --quiet \
		--out "$TMP/recv.hl7" "$rport"
	wait_for "every message delivered" 120 has_ids "$TMP/recv.hl7" "$n"
	stop_tool "$OUT_PID"
	[ "$RC" -eq 0 ] || fail "out: exit $RC"
	check_out "$TMP/recv.hl7" "$n" "$keys" 1 || fail "delivery check"
	ok "receiver down and back: nothing lost, order kept ($(counter "$TMP/out.out" retries) retries)"
}

# nats-server restarts (file storage kept): the in-bridge takes messages
# again, the out-bridge resumes; nothing that got AA is lost.
case_nats_restart() {
	local keys=10
	start_nats
	start_recv --out "$TMP/recv.hl7"
	start_in
	start_out --to "127.0.0.1:$RECV_PORT" --ack-wait 3
	gen 400 "$keys" "$TMP/msgs.hl7"
	python3 - "$TMP/msgs.hl7" <<'EOF2'
import sys
d = open(sys.argv[1]).read().split("MSH|")[1:]
open(sys.argv[1] + ".a", "w").write("".join("MSH|" + m for m in d[:200]))
open(sys.argv[1] + ".b", "w").write("".join("MSH|" + m for m in d[200:]))
EOF2
	"$SEND" -q 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7.a" || fail "first half: exit $?"
	kill "$NATS_PID"
	wait "$NATS_PID" 2>/dev/null
	wait_for "in to see NATS gone" 30 grep -qs "NATS connection lost" "$TMP/in.err"
	start_nats "$NATS_PORT"
	wait_for "in to reconnect" 30 grep -qs "NATS reconnected" "$TMP/in.err"
	wait_for "out to reconnect" 30 grep -qs "NATS reconnected" "$TMP/out.err"
	"$SEND" -q 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7.b" || fail "second half: exit $?"
	wait_for "every message delivered" 120 has_ids "$TMP/recv.hl7" 400
	stop_tool "$OUT_PID"
	[ "$RC" -eq 0 ] || fail "out: exit $RC"
	stop_tool "$IN_PID"
	check_out "$TMP/recv.hl7" 400 "$keys" 1 || fail "delivery check"
	ok "nats-server restarted: every message delivered"
}

# Two out-bridges share one consumer (deliver group): each message goes
# to one of them; both take part.
case_two_out() {
	local n=1000
	start_nats
	start_in
	gen "$n" 20 "$TMP/msgs.hl7"
	"$SEND" -q 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7" || fail "mllp-send: exit $?"
	run_tool ra "listening on" "$RECV" --bind 127.0.0.1 --quiet --out "$TMP/a.hl7" --delay 1 0
	local pa=$PORT
	run_tool rb "listening on" "$RECV" --bind 127.0.0.1 --quiet --out "$TMP/b.hl7" --delay 1 0
	local pb=$PORT
	OUT_NAME=outa start_out --to "127.0.0.1:$pa" --max-ack-pending 20
	local a=$OUT_PID
	OUT_NAME=outb start_out --to "127.0.0.1:$pb"
	local b=$OUT_PID
	wait_for "every message delivered" 120 has_total "$TMP/a.hl7" "$TMP/b.hl7" "$n"
	stop_tool "$a"
	stop_tool "$b"
	cat "$TMP/a.hl7" "$TMP/b.hl7" >"$TMP/all.hl7"
	check_out "$TMP/all.hl7" "$n" 1000000 0 || fail "each message exactly once"
	local fa fb
	fa=$(frames "$TMP/a.hl7") fb=$(frames "$TMP/b.hl7")
	[ "$fa" -gt 0 ] && [ "$fb" -gt 0 ] || fail "load not shared: $fa and $fb"
	ok "two bridges on one consumer: $fa + $fb, none twice"
}

# --on-reject hold: the key's lane stops at the rejected message; nothing
# after it is delivered; it is not acked (not lost).
case_hold() {
	start_nats
	start_recv --ack AR --out "$TMP/recv.hl7"
	start_in
	gen 6 2 "$TMP/msgs.hl7"
	"$SEND" -q 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7" || fail "mllp-send: exit $?"
	start_out --to "127.0.0.1:$RECV_PORT" --on-reject hold --ack-wait 1
	wait_for "two lanes held" 30 test "$(grep -c 'held at stream message' "$TMP/out.err")" -ge 2
	# An observation window, not a synchronisation: three AckWaits during
	# which InProgress must keep JetStream from redelivering the held
	# messages.
	sleep 3
	stop_tool "$OUT_PID"
	[ "$RC" -eq 0 ] || fail "out: exit $RC"
	[ "$(frames "$TMP/recv.hl7")" -eq 2 ] || fail "$(frames "$TMP/recv.hl7") frames sent, want 2 (the lanes' heads)"
	[ "$(counter "$TMP/out.out" lanes_held)" = 2 ] || fail "lanes_held=$(counter "$TMP/out.out" lanes_held)"
	[ "$(counter "$TMP/out.out" delivered)" = 0 ] || fail "delivered=$(counter "$TMP/out.out" delivered)"
	[ "$(counter "$TMP/out.out" redelivered)" = 0 ] || fail "redelivered=$(counter "$TMP/out.out" redelivered), want 0 (InProgress)"
	[ "$(counter "$TMP/out.out" in_progress)" -gt 0 ] || fail "no InProgress sent"
	grep -q "lane [0-9a-f]* held at stream message 1: The ACK reports application_reject (AR)" "$TMP/out.err" ||
		fail "hold log: $(cat "$TMP/out.err")"
	ok "--on-reject hold: 2 lanes held, nothing after them sent"
}

# Partitions: in publishes to hl7.out.<hash(key) mod 2>; one out-bridge
# per partition; one is killed and replaced mid-run: per-key order kept.
case_partitions() {
	local n=1000 keys=20
	start_nats
	start_recv --out "$TMP/recv.hl7" --delay 5
	start_in --subject 'hl7.out.{partition}' --partitions 2
	gen "$n" "$keys" "$TMP/msgs.hl7"
	"$SEND" -q 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7" || fail "mllp-send: exit $?"
	OUT_NAME=p0 run_tool p0 consuming "$BRIDGE" out --nats "$NATS_URL" \
		--consumer p0 --create-consumer --filter hl7.out.0 --ack-wait 2 \
		--to "127.0.0.1:$RECV_PORT" -c 2
	local p0=$TOOL_PID
	run_tool p1 consuming "$BRIDGE" out --nats "$NATS_URL" \
		--consumer p1 --create-consumer --filter hl7.out.1 --ack-wait 2 \
		--to "127.0.0.1:$RECV_PORT" -c 2
	local p1=$TOOL_PID
	wait_for "some messages delivered" 60 has_frames "$TMP/recv.hl7" 200
	kill -9 "$p0"
	wait "$p0" 2>/dev/null
	run_tool p0b consuming "$BRIDGE" out --nats "$NATS_URL" \
		--consumer p0 --to "127.0.0.1:$RECV_PORT" -c 2
	local p0b=$TOOL_PID
	wait_for "every message delivered" 120 has_ids "$TMP/recv.hl7" "$n"
	stop_tool "$p0b"
	stop_tool "$p1"
	check_out "$TMP/recv.hl7" "$n" "$keys" 1 || fail "delivery check"
	grep -q "^mllp-bridge: resume: " "$TMP/p0b.err" || fail "no resume phase: $(cat "$TMP/p0b.err")"
	ok "partitions: a replaced bridge kept per-key order"
}

# kill -9 the in-bridge mid-run; the sender resends everything to a new
# one: nothing lost, nothing stored twice (de-duplication by MSH-3, MSH-4,
# MSH-10), so the receiver gets each message once.
case_crash_in() {
	local n=3000 keys=10
	start_nats
	start_recv --out "$TMP/recv.hl7"
	start_in
	start_out --to "127.0.0.1:$RECV_PORT"
	gen "$n" "$keys" "$TMP/msgs.hl7"
	"$SEND" -q 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7" &
	local sender=$!
	wait_for "some messages stored and delivered" 60 has_frames "$TMP/recv.hl7" 500
	kill -9 "$IN_PID"
	wait "$IN_PID" 2>/dev/null
	wait "$sender"
	local rc=$?
	[ $rc -eq 2 ] || fail "mllp-send to the killed bridge: exit $rc, want 2"
	IN_NAME=in2 start_in
	"$SEND" -q 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7" || fail "resend: exit $?"
	wait_for "every message delivered" 120 has_ids "$TMP/recv.hl7" "$n"
	stop_tool "$IN_PID"
	stop_tool "$OUT_PID"
	local dups
	dups=$(counter "$TMP/in2.out" duplicates)
	[ "$dups" -gt 0 ] || fail "the resend found no duplicates"
	check_out "$TMP/recv.hl7" "$n" "$keys" 0 || fail "each message once"
	ok "in-bridge killed: resent, $dups duplicates not stored again"
}

# free_port: a loopback port nobody listens on (bound, then closed): the
# cluster's route ports must be known before the servers start.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# A 3-node JetStream cluster, stream replicas 3; one node is killed
# mid-run: nothing lost, both bridges go on.
case_cluster() {
	local n=1000 keys=10 i j routes c=() urls=() pids=()
	for i in 0 1 2; do c+=("$(free_port)"); done
	for i in 0 1 2; do
		routes=""
		for j in 0 1 2; do
			[ "$i" = "$j" ] || routes+="${routes:+,}nats://127.0.0.1:${c[$j]}"
		done
		mkdir -p "$TMP/ports$i"
		nats-server -js -p -1 -a 127.0.0.1 -sd "$TMP/js$i" -n "n$i" \
			--cluster_name hl7 --cluster "nats://127.0.0.1:${c[$i]}" \
			--routes "$routes" --ports_file_dir "$TMP/ports$i" \
			-l "$TMP/nats$i.log" &
		pids+=($!)
		PIDS+=($!)
	done
	for i in 0 1 2; do
		wait_for "node $i" 30 grep -qs "Server is ready" "$TMP/nats$i.log" || exit 1
		urls+=("nats://127.0.0.1:$(client_port "$TMP"/ports$i/*.ports)")
	done
	NATS_URL=$(IFS=,; echo "${urls[*]}")
	wait_for "a JetStream meta leader" 60 grep -qs "JetStream cluster new metadata leader" \
		"$TMP/nats0.log" "$TMP/nats1.log" "$TMP/nats2.log" || exit 1
	start_recv --out "$TMP/recv.hl7" --delay 2
	start_in --replicas 3
	start_out --to "127.0.0.1:$RECV_PORT" --ack-wait 3
	gen "$n" "$keys" "$TMP/msgs.hl7"
	python3 - "$TMP/msgs.hl7" <<'EOF2'
import sys
d = open(sys.argv[1]).read().split("MSH|")[1:]
open(sys.argv[1] + ".a", "w").write("".join("MSH|" + m for m in d[:500]))
open(sys.argv[1] + ".b", "w").write("".join("MSH|" + m for m in d[500:]))
EOF2
	"$SEND" -q 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7.a" || fail "first half: exit $?"
	kill -9 "${pids[0]}"
	wait "${pids[0]}" 2>/dev/null
	# Messages sent while the cluster elects new leaders may get AE: the
	# sender resends until every one is stored (AA). The first send's
	# answers say which messages were stored at once (AA).
	"$SEND" --json -t 10000 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7.b" \
		>"$TMP/first.json" 2>"$TMP/send.err"
	# Bounded by time, not by tries: electing new stream leaders and the
	# in-bridge's reconnect take seconds, and a refused resend is quick.
	local tries=0 end=$((SECONDS + 90)) stored=0
	[ "$(grep -c '"ack_code":"AA"' "$TMP/first.json")" -eq 500 ] && stored=1
	until [ $stored = 1 ] ||
		"$SEND" -q -t 10000 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7.b" \
			2>"$TMP/send.err"; do
		tries=$((tries + 1))
		if [ $SECONDS -ge $end ]; then
			fail "second half not stored after $tries resends in 90 s: $(tail -n 3 "$TMP/send.err")"
			break
		fi
		sleep 0.2 # between resends, as a sender's retry interval
	done
	wait_for "every message delivered" 120 has_ids "$TMP/recv.hl7" "$n"
	stop_tool "$OUT_PID"
	[ "$RC" -eq 0 ] || fail "out: exit $RC"
	stop_tool "$IN_PID"
	[ "$RC" -eq 0 ] || fail "in: exit $RC"
	# Not per-key order of every message: mllp-send goes on after an AE,
	# so a resent message is stored behind later ones of its key. The
	# messages that got AA at their first send keep their key's order.
	check_out "$TMP/recv.hl7" "$n" 1000000 1 || fail "delivery check"
	local clean
	clean=$(python3 - "$TMP/recv.hl7" "$TMP/first.json" "$keys" <<'EOF2'
import json, re, sys
data = open(sys.argv[1], "rb").read().decode()
keys = int(sys.argv[3])
ids = [int(m) for m in re.findall(r"\|M(\d+)\|P\|", data)]
clean = set(range(500))  # the first half: every message AA at once
for line in open(sys.argv[2]):
    r = json.loads(line)
    if r.get("ack_code") == "AA":
        clean.add(int(r["control_id"][1:]))
seen, order = set(), {}
for i in ids:
    if i not in seen:
        seen.add(i)
        if i in clean:
            order.setdefault(i % keys, []).append(i)
for k, v in sorted(order.items()):
    if v != sorted(v):
        print("key P%d out of order among the messages stored at once: %s" % (k, v), file=sys.stderr)
        sys.exit(1)
print(len(clean))
EOF2
) || fail "per-key order of the messages stored at their first send"
	ok "3 nodes, replicas 3, one killed: every message delivered ($tries resends); the $clean stored at their first send in per-key order"
}

# SIGTERM mid-run: the out-bridge finishes what is in flight, releases the
# rest (Nak) and exits 0 with its counters; a new bridge delivers the rest:
# nothing lost, per-key order kept.
case_drain() {
	local n=1000 keys=10
	start_nats
	start_recv --out "$TMP/recv.hl7" --delay 5
	start_in
	gen "$n" "$keys" "$TMP/msgs.hl7"
	"$SEND" -q 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7" || fail "mllp-send: exit $?"
	start_out --to "127.0.0.1:$RECV_PORT" -c 2 --max-ack-pending 100
	wait_for "some messages delivered" 60 has_frames "$TMP/recv.hl7" 100
	stop_tool "$OUT_PID"
	[ "$RC" -eq 0 ] || fail "out: exit $RC after SIGTERM"
	grep -q "^mllp-bridge: Terminated, draining$" "$TMP/out.err" || fail "no drain line: $(cat "$TMP/out.err")"
	local released delivered
	released=$(counter "$TMP/out.out" released)
	delivered=$(counter "$TMP/out.out" delivered)
	[ "${released:-0}" -gt 0 ] || fail "released=$released, want > 0"
	OUT_NAME=out2 start_out --to "127.0.0.1:$RECV_PORT" -c 2
	wait_for "every message delivered" 120 has_ids "$TMP/recv.hl7" "$n"
	stop_tool "$OUT_PID"
	check_out "$TMP/recv.hl7" "$n" "$keys" 1 || fail "delivery check"
	ok "SIGTERM: $delivered delivered, $released released, exit 0; the rest delivered by the next bridge"
}

# SIGTERM of the in-bridge with publishes in flight (JetStream frozen, so
# no PubAck comes): the receiver's drain keeps the connection open until
# each publish is answered at its --publish-timeout (longer than the
# receiver's default 1 s drain), so the sender gets an AE for every
# message rather than a closed connection; then the bridge exits 0.
case_drain_in() {
	local ip n=5
	start_nats
	start_in --publish-timeout 2500 --metrics 127.0.0.1:0
	ip=$(metrics_port in) || return
	gen "$n" "$n" "$TMP/msgs.hl7"
	kill -STOP "$NATS_PID"
	"$SEND" --window "$n" -t 30000 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7" \
		>"$TMP/send.out" 2>&1 &
	local send_pid=$!
	PIDS+=("$send_pid")
	pending_is() { scrape "$ip" "$TMP/m.txt" && [ "$(sample "$TMP/m.txt" mllp_bridge_in_pending)" = "$1" ]; }
	wait_for "$n publishes in flight" 30 pending_is "$n" || return
	kill -TERM "$IN_PID"
	wait "$send_pid"
	local rc=$?
	kill -CONT "$NATS_PID"
	[ $rc -eq 1 ] || fail "mllp-send exit $rc, want 1 (AE): $(cat "$TMP/send.out")"
	local ae
	ae=$(grep -c "AE.*not stored: JetStream did not acknowledge within 2500 ms (--publish-timeout)" "$TMP/send.out")
	[ "$ae" -eq "$n" ] || fail "$ae of $n answered AE: $(cat "$TMP/send.out")"
	stop_tool "$IN_PID"
	[ "$RC" -eq 0 ] || fail "in: exit $RC after SIGTERM"
	ok "in-bridge SIGTERM: every publish in flight answered (AE at its timeout), exit 0"
}

# scrape PORT FILE: GET /metrics from 127.0.0.1:PORT over bash's /dev/tcp
# (HTTP/1.0: the server closes after the answer; 10 s at most); the body
# in FILE. Fails unless the status is 200.
scrape() {
	local fd
	exec {fd}<>"/dev/tcp/127.0.0.1/$1" || { fail "scrape: cannot connect to $1"; return 1; }
	printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&"$fd"
	timeout 10 cat <&"$fd" >"$2.http"
	exec {fd}<&-
	head -1 "$2.http" | grep -q '^HTTP/1\.[01] 200 ' || { fail "scrape $1: $(head -1 "$2.http")"; return 1; }
	sed '1,/^\r$/d' "$2.http" >"$2"
}

# sample FILE NAME: a sample's value in a scraped page (empty if none).
sample() { awk -v n="$2" '$1 == n { print $2; exit }' "$1"; }

# expect_sample FILE NAME VALUE
expect_sample() {
	local v
	v=$(sample "$1" "$2")
	[ "$v" = "$3" ] || fail "$(basename "$1"): $2 is '${v}', want $3"
}

# metrics_port NAME: the port of the "metrics on 127.0.0.1:PORT" line in
# $TMP/NAME.out (waited for: 30 s).
metrics_port() {
	wait_for "$1: 'metrics on'" 30 grep -qs "^metrics on " "$TMP/$1.out" || return 1
	local line
	line=$(grep -m1 "^metrics on " "$TMP/$1.out")
	[[ $line =~ ^metrics\ on\ 127\.0\.0\.1:([1-9][0-9]*)$ ]] || { fail "$1: '$line'"; return 1; }
	echo "${BASH_REMATCH[1]}"
}

# promtool_ok FILE: the page passes `promtool check metrics` silently, and
# has as many HELP as TYPE lines.
promtool_ok() {
	local out rc
	out=$(promtool check metrics <"$1" 2>&1)
	rc=$?
	[ $rc -eq 0 ] && [ -z "$out" ] || fail "promtool on $(basename "$1") (exit $rc): $out"
	[ "$(grep -c '^# HELP ' "$1")" = "$(grep -c '^# TYPE ' "$1")" ] ||
		fail "$(basename "$1"): HELP and TYPE lines differ"
}

# --metrics on both directions: the counters printed on exit, the NATS
# connection's state and the receiver's or pool's families, exact after a
# known run, valid for promtool; NATS down and back shows in the page.
case_metrics() {
	if ! command -v promtool >/dev/null; then
		echo "SKIP: promtool not found (install Debian's prometheus)"
		exit 77
	fi
	local v n=200 keys=10 ip op
	for v in nope 127.0.0.1 127.0.0.1:70000 '[::1]' :9; do
		"$BRIDGE" out --consumer c --to 127.0.0.1:1 --metrics "$v" >"$TMP/o" 2>"$TMP/e"
		[ $? -eq 64 ] && grep -qxF "mllp-bridge: --metrics wants ADDR:PORT (e.g. 127.0.0.1:9464, [::1]:0), got '$v' (see --help)" "$TMP/e" ||
			fail "--metrics '$v': $(cat "$TMP/e")"
	done
	start_nats
	start_recv --out "$TMP/recv.hl7"
	start_in --metrics 127.0.0.1:0
	ip=$(metrics_port in) || return
	[ "$(sed -n 2p "$TMP/in.out")" = "metrics on 127.0.0.1:$ip" ] ||
		fail "in: second line '$(sed -n 2p "$TMP/in.out")'"
	"$BRIDGE" out --nats "$NATS_URL" --consumer feed --create-consumer \
		--to "127.0.0.1:$RECV_PORT" -c 2 --metrics 127.0.0.1:0 \
		>"$TMP/out.out" 2>"$TMP/out.err" &
	OUT_PID=$!
	PIDS+=("$OUT_PID")
	op=$(metrics_port out) || return
	wait_for "out: consuming" 30 grep -qs "^consuming HL7/feed$" "$TMP/out.out"
	[ "$(head -1 "$TMP/out.out")" = "metrics on 127.0.0.1:$op" ] ||
		fail "out: first line '$(head -1 "$TMP/out.out")'"
	scrape "$ip" "$TMP/in0"
	scrape "$op" "$TMP/out0"
	promtool_ok "$TMP/in0"
	promtool_ok "$TMP/out0"
	expect_sample "$TMP/in0" mllp_bridge_in_received_total 0
	expect_sample "$TMP/in0" mllp_bridge_nats_connected 1
	expect_sample "$TMP/in0" mllp_connections_accepted_total 0
	expect_sample "$TMP/out0" mllp_bridge_out_delivered_total 0
	expect_sample "$TMP/out0" mllp_bridge_out_standby 0
	expect_sample "$TMP/out0" mllp_bridge_nats_connected 1
	grep -q '^mllp_pool_info{' "$TMP/out0" || fail "no pool families on out's page"
	# n messages, the first 3 again (duplicates), one that is not HL7 (AR).
	gen "$n" "$keys" "$TMP/msgs.hl7"
	"$SEND" -q 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7" || fail "mllp-send: exit $?"
	gen 3 "$keys" "$TMP/again.hl7"
	"$SEND" -q 127.0.0.1 "$IN_PORT" "$TMP/again.hl7" || fail "resend: exit $?"
	printf '\013not HL7\034\r' >"$TMP/junk.mllp"
	"$SEND" --raw 127.0.0.1 "$IN_PORT" "$TMP/junk.mllp" >"$TMP/junk.out" 2>&1
	grep -q 'MSA|AR|' "$TMP/junk.out" || fail "not HL7: $(cat "$TMP/junk.out")"
	wait_for "$n messages at the receiver" 60 has_frames "$TMP/recv.hl7" "$n"
	wait_for "out: all acked" 30 eval 'scrape "$op" "$TMP/out1" && [ "$(sample "$TMP/out1" mllp_bridge_out_held)" = 0 ]'
	scrape "$ip" "$TMP/in1"
	promtool_ok "$TMP/in1"
	promtool_ok "$TMP/out1"
	expect_sample "$TMP/in1" mllp_bridge_in_received_total $((n + 4))
	expect_sample "$TMP/in1" mllp_bridge_in_stored_total "$n"
	expect_sample "$TMP/in1" mllp_bridge_in_duplicates_total 3
	expect_sample "$TMP/in1" mllp_bridge_in_rejected_total 1
	expect_sample "$TMP/in1" mllp_bridge_in_timed_out_total 0
	expect_sample "$TMP/in1" mllp_bridge_in_pending 0
	expect_sample "$TMP/in1" mllp_messages_received_total $((n + 4))
	expect_sample "$TMP/out1" mllp_bridge_out_received_total "$n"
	expect_sample "$TMP/out1" mllp_bridge_out_delivered_total "$n"
	expect_sample "$TMP/out1" mllp_bridge_out_redelivered_total 0
	expect_sample "$TMP/out1" mllp_messages_sent_total "$n"
	expect_sample "$TMP/out1" 'mllp_acks_total{verdict="application_accept"}' "$n"
	# Every family of the bridge is documented; counters end in _total.
	for v in $(sed -n 's/^# TYPE \(mllp_bridge_[a-z_]*\) counter$/\1/p' "$TMP/out1" "$TMP/in1"); do
		[[ $v == *_total ]] || fail "counter $v does not end in _total"
	done
	ok "--metrics: in $((n + 4)) received, $n stored, 3 duplicates, 1 rejected; out $n delivered"
	# NATS down, then back on its port: the state and the reconnect show.
	kill "$NATS_PID"
	wait "$NATS_PID" 2>/dev/null
	wait_for "in: NATS down on the page" 30 eval 'scrape "$ip" "$TMP/in2" && [ "$(sample "$TMP/in2" mllp_bridge_nats_connected)" = 0 ]'
	start_nats "$NATS_PORT"
	wait_for "in: reconnected on the page" 30 eval 'scrape "$ip" "$TMP/in3" && [ "$(sample "$TMP/in3" mllp_bridge_nats_reconnects_total)" = 1 ] && [ "$(sample "$TMP/in3" mllp_bridge_nats_connected)" = 1 ]'
	wait_for "out: reconnected on the page" 30 eval 'scrape "$op" "$TMP/out3" && [ "$(sample "$TMP/out3" mllp_bridge_nats_reconnects_total)" = 1 ]'
	stop_tool "$OUT_PID"
	[ "$RC" -eq 0 ] || fail "out: exit $RC"
	[ "$(counter "$TMP/out.out" delivered)" = "$n" ] || fail "out: delivered=$(counter "$TMP/out.out" delivered) on exit"
	stop_tool "$IN_PID"
	[ "$RC" -eq 0 ] || fail "in: exit $RC"
	ok "--metrics: NATS down and back (connected 0, then 1 after 1 reconnect)"
}

# start_excl NAME ARGS...: an out-bridge on consumer p0 with --exclusive
# --lease 2 and --metrics; sets X_PID and X_MPORT.
start_excl() {
	local name=$1
	shift
	"$BRIDGE" out --nats "$NATS_URL" --consumer p0 --create-consumer \
		--filter hl7.out.0 --ack-wait 2 --max-ack-pending 50 -c 2 \
		--to "127.0.0.1:$RECV_PORT" --exclusive --lease 2 \
		--metrics 127.0.0.1:0 "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
	X_PID=$!
	PIDS+=("$X_PID")
	X_MPORT=$(metrics_port "$name") || exit 1
}

# standing_by NAME PORT: NAME logged its standby, its page says standby 1
# and it has received nothing.
standing_by() {
	grep -q "^mllp-bridge: standby: consumer 'p0' is bound by another bridge (lease held by .*); waiting, checking every 666 ms$" \
		"$TMP/$1.err" || return 1
	scrape "$2" "$TMP/$1.page" || return 1
	[ "$(sample "$TMP/$1.page" mllp_bridge_out_standby)" = 1 ] &&
		[ "$(sample "$TMP/$1.page" mllp_bridge_out_received_total)" = 0 ] &&
		! grep -q "^consuming" "$TMP/$1.out"
}

# One owner per partition consumer (--exclusive): A owns p0; B and C wait
# as standbys and receive nothing; A is killed (-9): exactly one of them
# takes over once A's lease expires, the other stays standby; every
# message is delivered and each key's first deliveries keep their order.
case_exclusive() {
	local n=1500 keys=10 a b c t0 before owner other bport cport oport
	start_nats
	start_recv --out "$TMP/recv.hl7" --delay 20
	start_in --subject 'hl7.out.{partition}' --partitions 1
	gen "$n" "$keys" "$TMP/msgs.hl7"
	"$SEND" -q 127.0.0.1 "$IN_PORT" "$TMP/msgs.hl7" || fail "mllp-send: exit $?"
	start_excl A
	a=$X_PID
	wait_for "A consuming" 30 grep -qs "^consuming HL7/p0$" "$TMP/A.out" || return
	wait_for "some messages delivered" 60 has_frames "$TMP/recv.hl7" 100
	start_excl B
	b=$X_PID bport=$X_MPORT
	start_excl C
	c=$X_PID cport=$X_MPORT
	wait_for "B standing by" 30 standing_by B "$bport"
	wait_for "C standing by" 30 standing_by C "$cport"
	# A goes on for two lease periods while B and C poll (an
	# observation window, ended by deliveries and the clock).
	t0=$SECONDS before=$(frames "$TMP/recv.hl7")
	wait_for "A delivering while B and C stand by" 60 \
		eval '[ $SECONDS -ge $((t0 + 4)) ] && has_frames "$TMP/recv.hl7" $((before + 100))'
	standing_by B "$bport" || fail "B left standby while A owned p0: $(cat "$TMP/B.err")"
	standing_by C "$cport" || fail "C left standby while A owned p0: $(cat "$TMP/C.err")"
	has_ids "$TMP/recv.hl7" "$n" && fail "A finished before it was killed: no takeover tested"
	kill -9 "$a"
	wait "$a" 2>/dev/null
	t0=$SECONDS
	wait_for "a standby to take over" 30 grep -qs "^consuming HL7/p0$" "$TMP/B.out" "$TMP/C.out" || return
	local took=$((SECONDS - t0))
	if grep -qs "^consuming" "$TMP/B.out"; then owner=B other=C oport=$cport; else owner=C other=B oport=$bport; fi
	grep -q "^mllp-bridge: taking over consumer 'p0'$" "$TMP/$owner.err" || fail "$owner: no takeover line"
	wait_for "every message delivered" 120 has_ids "$TMP/recv.hl7" "$n"
	standing_by "$other" "$oport" || fail "$other took over too: $(cat "$TMP/$other.err")"
	check_out "$TMP/recv.hl7" "$n" "$keys" 1 || fail "delivery check"
	ok "--exclusive: A killed, $owner took over after ${took} s, $other stayed standby; nothing lost, per-key order kept"
	# The owner stops (SIGTERM): it gives the lease up, the other takes
	# over.
	local opid=$b xpid=$c
	[ "$owner" = B ] || { opid=$c xpid=$b; }
	stop_tool "$opid"
	[ "$RC" -eq 0 ] || fail "$owner: exit $RC after SIGTERM"
	[ "$(counter "$TMP/$owner.out" delivered)" -gt 0 ] || fail "$owner delivered nothing"
	wait_for "$other to take over from a stopped owner" 30 grep -qs "^consuming HL7/p0$" "$TMP/$other.out"
	stop_tool "$xpid"
	[ "$RC" -eq 0 ] || fail "$other: exit $RC"
	[ "$(counter "$TMP/$other.out" received)" = 0 ] || fail "$other received $(counter "$TMP/$other.out" received) (all was acked)"
	ok "--exclusive: $owner stopped, $other took over"
}

# TLS on both sides: mllp-send --tls -> in --tls -> JetStream -> out --tls
# -> mllp-recv --tls.
case_tls() {
	if "$BRIDGE" --version | grep -q "without TLS"; then
		echo "SKIP: the library is built without TLS"
		exit 77
	fi
	sh "$HERE/../make_certs.sh" "$TMP/c" >/dev/null || { fail "make_certs.sh"; return; }
	local c=$TMP/c
	start_nats
	start_recv --tls --cert "$c/server.pem" --key "$c/server.key" --out "$TMP/recv.hl7"
	start_in --tls --cert "$c/server.pem" --key "$c/server.key"
	grep -q "non secured" "$TMP/in.err" && fail "TLS listener warned about plaintext"
	start_out --to "localhost:$RECV_PORT" --tls --ca "$c/ca.pem"
	gen 20 4 "$TMP/msgs.hl7"
	"$SEND" -q --tls --ca "$c/ca.pem" localhost "$IN_PORT" "$TMP/msgs.hl7" ||
		fail "mllp-send over TLS: exit $?"
	wait_for "20 messages over TLS" 60 has_ids "$TMP/recv.hl7" 20
	stop_tool "$OUT_PID"
	stop_tool "$IN_PID"
	check_out "$TMP/recv.hl7" 20 4 0 || fail "delivery check"
	ok "TLS in and out"
}

"case_$CASE"
[ "$FAILS" -eq 0 ] || exit 1
