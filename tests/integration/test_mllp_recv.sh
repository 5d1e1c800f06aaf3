#!/usr/bin/env bash
# mllp-recv as a process: options, exit codes, the first line
# "listening on ADDR:PORT" (the port is read from it: port 0, no fixed
# ports), replies over a real socket, --count, --out, --stats, signals.
# No sleeps: every wait is a bounded read (read -t) or a wait on the pid.
# usage: test_mllp_recv.sh PATH/TO/mllp-recv
set -uo pipefail
bin=$1
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

SB=$'\x0b'
EB=$'\x1c'
CR=$'\r'

# start NAME ARGS...: run mllp-recv with stdout on a fifo (fd 5), read the
# first line, set PORT and PID.
start() {
	local name=$1
	shift
	rm -f "$tmp/$name.fifo"
	mkfifo "$tmp/$name.fifo"
	"$bin" "$@" >"$tmp/$name.fifo" 2>"$tmp/$name.err" &
	PID=$!
	pids+=("$PID")
	exec 5<"$tmp/$name.fifo"
	local line
	IFS= read -r -t 10 -u 5 line || fail "$name: no first line ($(cat "$tmp/$name.err"))"
	[[ $line =~ ^listening\ on\ (.+):([0-9]+)$ ]] || fail "$name: first line '$line'"
	PORT=${BASH_REMATCH[2]}
	[[ $PORT != 0 ]] || fail "$name: port 0 reported"
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
	"$bin" $args >/dev/null 2>"$tmp/bad.err"
	rc=$?
	[[ $rc == 64 ]] || fail "'$args' exit $rc, want 64"
	[[ $(wc -l <"$tmp/bad.err") == 1 ]] || fail "'$args' stderr not one line"
done
"$bin" --bogus >/dev/null 2>"$tmp/bad.err"
[[ $? == 64 ]] || fail "--bogus not refused"
[[ $(cat "$tmp/bad.err") == $'mllp-recv: unknown option --bogus\nUsage: mllp-recv [OPTIONS] [PORT]' ]] ||
	fail "--bogus error text: $(cat "$tmp/bad.err")"
"$bin" --delay >/dev/null 2>"$tmp/bad.err"
[[ $? == 64 ]] || fail "--delay without value not refused"
[[ $(cat "$tmp/bad.err") == $'mllp-recv: option --delay needs a value\nUsage: mllp-recv [OPTIONS] [PORT]' ]] ||
	fail "--delay error text: $(cat "$tmp/bad.err")"
"$bin" 70000 >/dev/null 2>"$tmp/bad.err"
grep -qx "mllp-recv: PORT wants 0..65535, got '70000' (see --help)" "$tmp/bad.err" ||
	fail "port error text: $(cat "$tmp/bad.err")"
"$bin" --delay x >/dev/null 2>"$tmp/bad.err"
grep -qx "mllp-recv: --delay wants milliseconds 0..3600000, got 'x' (see --help)" "$tmp/bad.err" ||
	fail "--delay x error text: $(cat "$tmp/bad.err")"
"$bin" --max-connections 0 >/dev/null 2>"$tmp/bad.err"
grep -qx "mllp-recv: --max-connections wants a number >= 1, got '0' (see --help)" "$tmp/bad.err" ||
	fail "--max-connections 0 error text: $(cat "$tmp/bad.err")"
# The memory bounds: a size >= 1; the budget holds at least one frame.
expect_usage() {
	local want=$1
	shift
	"$bin" "$@" >/dev/null 2>"$tmp/bad.err"
	local rc=$?
	[[ $rc == 64 ]] || fail "'$*' exit $rc, want 64"
	[[ $(cat "$tmp/bad.err") == "$want" ]] ||
		fail "'$*' error text: $(cat "$tmp/bad.err")"
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
"$bin" --help >"$tmp/help" || fail "--help exit $?"
for o in --bind --ack --ack-mix --echo --delay --max-frame --max-connections \
	--idle-timeout --max-buffered-bytes --reply-backlog-pause --allow \
	--count --out --quiet --stats --backend; do
	grep -q -- "$o" "$tmp/help" || fail "--help lacks $o"
done

# ---- --count, --out, --stats, junk and a trailing LF -------------------------
start count 0 --bind 127.0.0.1 --count 3 --stats --out "$tmp/out.mllp" --quiet
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
[[ $(grep -c 'MSH|' <(tr '\r' '\n' <"$tmp/out.mllp")) == 3 ]] || fail "--out"
[[ $(head -c 1 "$tmp/out.mllp") == "$SB" ]] || fail "--out not framed"

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
	rm -f "$tmp/budget.fifo" "$tmp/budget.log"
	mkfifo "$tmp/budget.fifo" "$tmp/budget.log"
	"$bin" --bind 127.0.0.1 --max-frame 65536 --stats "${args[@]}" 0 \
		>"$tmp/budget.fifo" 2>"$tmp/budget.log" &
	PID=$!
	pids+=("$PID")
	exec 5<"$tmp/budget.fifo" 6<"$tmp/budget.log"
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
grep -q "non secured socket" "$tmp/echo.err" || fail "no unencrypted warning"
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
"$bin" "$echo_port" --bind 127.0.0.1 >/dev/null 2>"$tmp/inuse.err"
rc=$?
[[ $rc == 1 ]] || fail "port in use: exit $rc"
grep -q "address already in use" "$tmp/inuse.err" || fail "in use: $(cat "$tmp/inuse.err")"
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
exec 3<>"/dev/tcp/127.0.0.1/$PORT" || fail "connect"
printf '%s%s%s%s' "$SB" "$(msg R1)" "$EB" "$CR" >&3 2>/dev/null
read_reply 3 && fail "refused client got a reply"
exec 3<&-
kill -TERM "$PID"
cat <&5 >/dev/null
exec 5<&-
wait "$PID"
grep -q "refused connection from 127.0.0.1" "$tmp/allow.err" || fail "no refusal logged"
echo "mllp-recv process tests passed"
