# Helpers shared by the test scripts, sourced by them (bash):
#   TMP      a scratch directory, removed at exit
#   PIDS     processes to end at exit (append the background jobs you start)
#   fail MSG counts a failure in FAILS and says it on stderr (and exits 1
#            when FAIL_FAST is set); ok MSG
#   start_listener NAME CMD...  start a receiver on a loopback ephemeral port
#   open_listener NAME CMD...   the same, its stdout kept open on fd 5
#   install_prefix BUILD PREFIX  install the built tree, for pkg-config too
# Every wait is bounded: nothing here sleeps to synchronise.

TMP=$(mktemp -d)
PIDS=()
FAILS=0

lib_cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap lib_cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	FAILS=$((FAILS + 1))
	[[ -z ${FAIL_FAST:-} ]] || exit 1
}
ok() { echo "ok: $*"; }

# start_listener NAME CMD...: run CMD, a receiver whose first line on
# stdout is "listening on ADDR:PORT", in the background (its pid in PIDS
# and LISTENER_PID, its stderr in $TMP/NAME.err); read that line (30 s at
# most), set PORT and discard the rest of its stdout. Returns 1, saying
# why on stderr, when no such line comes.
start_listener() {
	local name=$1 fifo line fd
	shift
	fifo=$TMP/$name.$RANDOM.fifo
	mkfifo "$fifo"
	"$@" >"$fifo" 2>"$TMP/$name.err" &
	LISTENER_PID=$!
	PIDS+=("$LISTENER_PID")
	exec {fd}<"$fifo"
	IFS= read -r -t 30 line <&"$fd" || line=''
	cat <&"$fd" >/dev/null &
	PIDS+=($!)
	exec {fd}<&-
	PORT=${line##*:}
	if ! [[ $line == "listening on "* && $PORT =~ ^[0-9]+$ ]]; then
		echo "$name did not start: '$line'" >&2
		cat "$TMP/$name.err" >&2
		return 1
	fi
}

# open_listener NAME CMD...: run CMD, a receiver whose first line on
# stdout is "listening on ADDR:PORT", in the background with its stdout on
# a fifo open as fd 5 (the caller reads what follows and closes it), its
# stderr in $TMP/NAME.err, its pid in PID and PIDS; read that line (30 s
# at most) and set LISTEN_ADDR and PORT. Calls fail when no such line
# comes or the port is 0.
open_listener() {
	local name=$1 line
	shift
	rm -f "$TMP/$name.fifo"
	mkfifo "$TMP/$name.fifo"
	"$@" >"$TMP/$name.fifo" 2>"$TMP/$name.err" &
	PID=$!
	PIDS+=("$PID")
	exec 5<"$TMP/$name.fifo"
	IFS= read -r -t 30 -u 5 line || fail "$name: no first line ($(cat "$TMP/$name.err"))"
	[[ $line =~ ^listening\ on\ (.+):([0-9]+)$ ]] || fail "$name: first line '$line'"
	LISTEN_ADDR=${BASH_REMATCH[1]}
	PORT=${BASH_REMATCH[2]}
	[[ $PORT != 0 ]] || fail "$name: port 0 reported"
}

# install_prefix BUILD PREFIX: cmake --install the build tree BUILD into
# PREFIX and export PKG_CONFIG_PATH to the mllp.pc installed there.
# Returns 1, saying why on stderr (with the install's output), on failure.
install_prefix() {
	local build=$1 prefix=$2 pc
	if ! cmake --install "$build" --prefix "$prefix" >"$TMP/install.log" 2>&1; then
		cat "$TMP/install.log" >&2
		echo "FAIL: cmake --install $build" >&2
		return 1
	fi
	pc=$(find "$prefix" -name mllp.pc)
	if [ -z "$pc" ]; then
		echo "FAIL: cmake --install $build put no mllp.pc in $prefix" >&2
		return 1
	fi
	PKG_CONFIG_PATH=$(dirname "$pc")
	export PKG_CONFIG_PATH
}
