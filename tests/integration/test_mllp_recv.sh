#!/usr/bin/env bash
# mllp-recv as a process: options, exit codes, the first line
# "listening on ADDR:PORT" (the port is read from it: port 0, no fixed
# ports), replies over a real socket, --count, --out, --stats, signals.
# No sleeps: every wait is a bounded read (read -t) or a wait on the pid.
# usage: test_mllp_recv.sh PATH/TO/mllp-recv
set -uo pipefail
bin=$1
FAIL_FAST=1
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

SB=$'\x0b'
EB=$'\x1c'
CR=$'\r'

# start NAME ARGS...: run mllp-recv with stdout on fd 5 (open_listener):
# PORT and PID.
start() {
	local name=$1
	shift
	open_listener "$name" "$bin" "$@"
}

# read_reply FD: one MLLP frame from FD into REPLY (payload only).
read_reply() {
	local fd=$1 junk
	IFS= read -r -d "$SB" -t 10 -u "$fd" junk || return 1
	IFS= read -r -d "$EB" -t 10 -u "$fd" REPLY || return 1
	IFS= read -r -n 1 -t 10 -u "$fd" junk || return 1
	return 0
}

msg() { printf 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|%s|P|2.5\rPID|1\r' "$1"; }

# ---- bad options: exit 64, one line (a getopt error adds the usage line) ----
for args in "--ack XX" "--ack-mix AA=x" "--echo --ack AA" \
	"--backend nope" "70000" "1 2" "--idle-timeout -1"; do
	# shellcheck disable=SC2086
	"$bin" $args >/dev/null 2>"$TMP/bad.err"
	rc=$?
	[[ $rc == 64 ]] || fail "'$args' exit $rc, want 64"
	[[ $(wc -l <"$TMP/bad.err") == 1 ]] || fail "'$args' stderr not one line"
done
"$bin" --bogus >/dev/null 2>"$TMP/bad.err"
[[ $? == 64 ]] || fail "--bogus not refused"
[[ $(cat "$TMP/bad.err") == $'mllp-recv: unknown option --bogus\nUsage: mllp-recv [OPTIONS] [PORT]' ]] ||
	fail "--bogus error text: $(cat "$TMP/bad.err")"
"$bin" --delay >/dev/null 2>"$TMP/bad.err"
[[ $? == 64 ]] || fail "--delay without value not refused"
[[ $(cat "$TMP/bad.err") == $'mllp-recv: option --delay needs a value\nUsage: mllp-recv [OPTIONS] [PORT]' ]] ||
	fail "--delay error text: $(cat "$TMP/bad.err")"
"$bin" 70000 >/dev/null 2>"$TMP/bad.err"
grep -qx "mllp-recv: PORT wants 0..65535, got '70000' (see --help)" "$TMP/bad.err" ||
	fail "port error text: $(cat "$TMP/bad.err")"
"$bin" --delay x >/dev/null 2>"$TMP/bad.err"
grep -qx "mllp-recv: --delay wants milliseconds 0..3600000, got 'x' (see --help)" "$TMP/bad.err" ||
	fail "--delay x error text: $(cat "$TMP/bad.err")"
"$bin" --max-connections 0 >/dev/null 2>"$TMP/bad.err"
grep -qx "mllp-recv: --max-connections wants a number >= 1, got '0' (see --help)" "$TMP/bad.err" ||
	fail "--max-connections 0 error text: $(cat "$TMP/bad.err")"
# The memory bounds: a size >= 1; the budget holds at least one frame.
expect_usage() {
	local want=$1
	shift
	"$bin" "$@" >/dev/null 2>"$TMP/bad.err"
	local rc=$?
	[[ $rc == 64 ]] || fail "'$*' exit $rc, want 64"
	[[ $(cat "$TMP/bad.err") == "$want" ]] ||
		fail "'$*' error text: $(cat "$TMP/bad.err")"
}
expect_usage "mllp-recv: --max-buffered-bytes wants a size in bytes >= 1, got '0' (see --help)" \
	--max-buffered-bytes 0
expect_usage "mllp-recv: --max-buffered-bytes wants a size in bytes >= 1, got '1k' (see --help)" \
	--max-buffered-bytes 1k
expect_usage "mllp-recv: --reply-backlog-pause wants a size in bytes >= 1, got '0' (see --help)" \
	--reply-backlog-pause 0
expect_usage "mllp-recv: --reply-backlog-pause wants a size in bytes >= 1, got '-5' (see --help)" \
	--reply-backlog-pause -5
expect_usage "mllp-recv: --max-buffered-bytes (1000) must be at least --max-frame (16777216) (see --help)" \
	--max-buffered-bytes 1000
expect_usage "mllp-recv: --max-buffered-bytes (65535) must be at least --max-frame (65536) (see --help)" \
	--max-frame 65536 --max-buffered-bytes 65535
expect_usage "mllp-recv: --max-buffered-bytes (268435456, the default) must be at least --max-frame (268435457) (see --help)" \
	--max-frame 268435457
expect_usage $'mllp-recv: option --reply-backlog-pause needs a value\nUsage: mllp-recv [OPTIONS] [PORT]' \
	--reply-backlog-pause
"$bin" --help >"$TMP/help" || fail "--help exit $?"
for o in --bind --ack --ack-mix --echo --delay --max-frame --max-connections \
	--idle-timeout --max-buffered-bytes --reply-backlog-pause --allow \
	--count --out --quiet --stats --backend; do
	grep -q -- "$o" "$TMP/help" || fail "--help lacks $o"
done

# ---- --count, --out, --stats, junk and a trailing LF -------------------------
start count 0 --bind 127.0.0.1 --count 3 --stats --out "$TMP/out.mllp" --quiet
exec 3<>"/dev/tcp/127.0.0.1/$PORT" || fail "connect"
{
	printf '%s%s%s%s' "$SB" "$(msg ID1)" "$EB" "$CR"
	printf 'junk'
	printf '%s%s%s%s\n' "$SB" "$(msg ID2)" "$EB" "$CR"
	printf '%s%s%s%s' "$SB" "$(msg ID3)" "$EB" "$CR"
} >&3
for i in 1 2 3; do
	read_reply 3 || fail "count: no reply $i"
	[[ $REPLY == *"MSA|AA|ID$i"* ]] || fail "count: reply $i: $REPLY"
done
exec 3<&-
wait "$PID"
rc=$?
[[ $rc == 0 ]] || fail "--count: exit $rc"
stats=$(cat <&5)
exec 5<&-
grep -q '^messages_received=3$' <<<"$stats" || fail "stats: $stats"
grep -q '^replies_sent=3$' <<<"$stats" || fail "stats: $stats"
grep -q '^junk_bytes=5$' <<<"$stats" || fail "stats junk: $stats"
[[ $(grep -c 'MSH|' <(tr '\r' '\n' <"$TMP/out.mllp")) == 3 ]] || fail "--out"
[[ $(head -c 1 "$TMP/out.mllp") == "$SB" ]] || fail "--out not framed"

# ---- --reply-backlog-pause: a held reply pauses reading ---------------------
# Each reply is held 200 ms (--delay): with a pause of 1 byte the receiver
# stops reading the connection meanwhile (reads_paused counts it); with the
# default 256 KiB it never does.
for pause in default 1; do
	args=()
	[[ $pause == default ]] || args=(--reply-backlog-pause "$pause")
	start pause 0 --bind 127.0.0.1 --quiet --delay 200 --count 2 --stats "${args[@]}"
	exec 3<>"/dev/tcp/127.0.0.1/$PORT" || fail "connect"
	printf '%s%s%s%s' "$SB" "$(msg Q1)" "$EB" "$CR" >&3
	printf '%s%s%s%s' "$SB" "$(msg Q2)" "$EB" "$CR" >&3
	for i in 1 2; do
		read_reply 3 || fail "pause $pause: no reply $i"
		[[ $REPLY == *"MSA|AA|Q$i"* ]] || fail "pause $pause: reply $i: $REPLY"
	done
	exec 3<&-
	wait "$PID" || fail "pause $pause: exit $?"
	stats=$(cat <&5)
	exec 5<&-
	if [[ $pause == default ]]; then
		grep -q '^reads_paused=0$' <<<"$stats" || fail "paused by default: $stats"
	else
		grep -Eq '^reads_paused=[1-9][0-9]*$' <<<"$stats" || fail "not paused: $stats"
	fi
done

# ---- --max-buffered-bytes: past the budget a connection is closed ----------
# Two connections each hold a 40000-byte partial frame (64 KiB of buffer
# each): over a 65536-byte budget one of them is closed and logged; the
# default budget holds both.
for budget in default 65536; do
	args=()
	[[ $budget == default ]] || args=(--max-buffered-bytes "$budget")
	rm -f "$TMP/budget.fifo" "$TMP/budget.log"
	mkfifo "$TMP/budget.fifo" "$TMP/budget.log"
	"$bin" --bind 127.0.0.1 --max-frame 65536 --stats "${args[@]}" 0 \
		>"$TMP/budget.fifo" 2>"$TMP/budget.log" &
	PID=$!
	PIDS+=("$PID")
	exec 5<"$TMP/budget.fifo" 6<"$TMP/budget.log"
	IFS= read -r -t 10 -u 5 line || fail "budget: no first line"
	PORT=${line##*:}
	exec 3<>"/dev/tcp/127.0.0.1/$PORT" || fail "connect"
	exec 4<>"/dev/tcp/127.0.0.1/$PORT" || fail "connect"
	partial=$(printf '%*s' 40000 '' | tr ' ' A)
	printf '%s%s' "$SB" "$partial" >&3
	printf '%s%s' "$SB" "$partial" >&4
	if [[ $budget == default ]]; then
		# Both held: a complete frame on each still gets its reply.
		for fd in 3 4; do
			printf '%s%s%s%s' "$EB" "$CR" "$SB" "$(msg B$fd)" >&$fd
			printf '%s%s' "$EB" "$CR" >&$fd
		done
		for fd in 3 4; do
			read_reply "$fd" || fail "default budget: no reply on $fd"
			read_reply "$fd" || fail "default budget: no second reply on $fd"
			[[ $REPLY == *"MSA|AA|B$fd"* ]] || fail "default budget: $REPLY"
		done
	else
		shed=''
		while IFS= read -r -t 10 -u 6 line; do
			[[ $line == *"buffer budget exceeded"* ]] && shed=$line && break
		done
		[[ $shed =~ ^mllp-recv:\ warning:\ connection\ from\ 127\.0\.0\.1:[0-9]+:\ buffer\ budget\ exceeded\ \([0-9]+\ bytes\ held,\ max_buffered_bytes\ 65536\),\ closing$ ]] ||
			fail "budget: no shed line: '$shed'"
	fi
	exec 3<&- 4<&-
	kill -TERM "$PID"
	stats=$(cat <&5)
	cat <&6 >/dev/null
	exec 5<&- 6<&-
	wait "$PID"
	if [[ $budget == default ]]; then
		grep -q '^connections_shed=0$' <<<"$stats" || fail "shed by default: $stats"
	else
		grep -q '^connections_shed=1$' <<<"$stats" || fail "budget stats: $stats"
		peak=$(sed -n 's/^buffered_bytes_peak=//p' <<<"$stats")
		[[ $peak =~ ^[0-9]+$ && $peak -le 65536 ]] || fail "budget peak: $stats"
	fi
done

# ---- --backend epoll: same behaviour, reported in the counters -----
start epoll 0 --bind 127.0.0.1 --backend epoll --count 1 --stats --quiet
exec 3<>"/dev/tcp/127.0.0.1/$PORT" || fail "connect"
printf '%s%s%s%s' "$SB" "$(msg P1)" "$EB" "$CR" >&3
read_reply 3 || fail "epoll: no reply"
[[ $REPLY == *"MSA|AA|P1"* ]] || fail "epoll: $REPLY"
exec 3<&-
wait "$PID" || fail "epoll: exit $?"
stats=$(cat <&5)
exec 5<&-
grep -q '^backend=epoll$' <<<"$stats" || fail "epoll stats: $stats"

# ---- --echo, then SIGTERM prints the counters ---------------------------------
start echo 0 --bind 127.0.0.1 --echo
grep -q "non secured socket" "$TMP/echo.err" || fail "no unencrypted warning"
exec 3<>"/dev/tcp/127.0.0.1/$PORT" || fail "connect"
printf '%shello%s%s' "$SB" "$EB" "$CR" >&3
read_reply 3 || fail "echo: no reply"
[[ $REPLY == mllp_unknown ]] || fail "echo: $REPLY"
printf '%s%s%s%s' "$SB" "$(msg E1)" "$EB" "$CR" >&3
read_reply 3 || fail "echo: no reply"
[[ $REPLY == *"MSA|AA|E1|A real MLLP message dispatcher was not provided"* ]] ||
	fail "echo HL7: $REPLY"
echo_port=$PORT
echo_pid=$PID
# ---- port in use: exit 1 with the reason ------------------------------------
"$bin" "$echo_port" --bind 127.0.0.1 >/dev/null 2>"$TMP/inuse.err"
rc=$?
[[ $rc == 1 ]] || fail "port in use: exit $rc"
grep -q "address already in use" "$TMP/inuse.err" || fail "in use: $(cat "$TMP/inuse.err")"
kill -TERM "$echo_pid"
stats=$(cat <&5)
exec 5<&-
wait "$echo_pid"
rc=$?
[[ $rc == 0 ]] || fail "SIGTERM: exit $rc"
grep -q '^messages_received=2$' <<<"$stats" || fail "SIGTERM stats: $stats"
# the connection was closed by the stop
IFS= read -r -t 10 -u 3 x && fail "connection still open after stop"
exec 3<&-

# ---- --ack AE, --allow refuses ------------------------------------------------
start ae 0 --bind 127.0.0.1 --ack AE --quiet
exec 3<>"/dev/tcp/127.0.0.1/$PORT" || fail "connect"
printf '%s%s%s%s' "$SB" "$(msg X1)" "$EB" "$CR" >&3
read_reply 3 || fail "ae: no reply"
[[ $REPLY == *"MSA|AE|X1"* ]] || fail "ae: $REPLY"
exec 3<&-
kill -INT "$PID"
cat <&5 >/dev/null
exec 5<&-
wait "$PID" || fail "SIGINT exit $?"

start allow 0 --bind 127.0.0.1 --allow 10.9.9.9
# Refused at once (abortive close): the reset may come before connect()
# has returned, which is a refusal too.
if exec 3<>"/dev/tcp/127.0.0.1/$PORT" 2>"$TMP/allow.connect"; then
	printf '%s%s%s%s' "$SB" "$(msg R1)" "$EB" "$CR" >&3 2>/dev/null
	read_reply 3 && fail "refused client got a reply"
	exec 3<&-
else
	grep -q "Connection reset by peer" "$TMP/allow.connect" ||
		fail "connect: $(cat "$TMP/allow.connect")"
fi
kill -TERM "$PID"
cat <&5 >/dev/null
exec 5<&-
wait "$PID"
grep -q "refused connection from 127.0.0.1" "$TMP/allow.err" || fail "no refusal logged"
echo "mllp-recv process tests passed"
