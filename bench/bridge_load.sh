#!/usr/bin/env bash
# Throughput of the broker path against the direct one, on this machine:
#   bridge: mllp-load -> mllp-bridge in -> JetStream (file storage,
#           replicas 1) -> mllp-bridge out -> mllp-recv
#   plain:  mllp-load -> mllp-recv, the same mllp-load settings
# Each run starts its own nats-server (-js, loopback, ephemeral port, a
# scratch store), receiver and bridges, and times N messages from the
# start of mllp-load until mllp-recv has answered the N-th (--count N).
# It prints both rates, their ratio, and the CPU time of every process
# per message (utime + stime from /proc/PID/stat, sampled at the start
# and the end of the timed part; mllp-load and mllp-recv from
# /usr/bin/time), then medians and ranges over the runs. The CPU ratio
# (CPU per message of the plain run over that of the bridge run, every
# process counted) is the throughput ratio a machine whose CPUs all
# processes share could reach at best; unlike the rates it hardly
# depends on what else runs.
#
# usage: bench/bridge_load.sh BUILD_DIR [N=30000] [RUNS=3]
# environment:
#   LOAD_OPTS  mllp-load's settings (default "-c 16 --window 16")
#   OUT_OPTS   mllp-bridge out's settings (default "-c 8")
#   IN_OPTS    extra mllp-bridge in options (default none)
#   KEYS       patients (PID-3) over which the messages spread (default 200)
#   PERF_DIR   record a profile of nats-server, in and out during the timed
#              part (perf record -g) into PERF_DIR/{nats,in,out}.RUN.data;
#              read with perf report -i FILE --no-children
#   BRIDGE     the mllp-bridge binary (default BUILD_DIR/tools/mllp-bridge),
#              e.g. an older build to compare with
#
# Nothing is pinned: every process shares the machine's CPUs (2 here)
# with nats-server and with whatever else runs; the load average at the
# start is printed. Run it several times on a quiet machine.
set -euo pipefail
build=${1:?usage: bench/bridge_load.sh BUILD_DIR [N] [RUNS]}
n=${2:-30000}
runs=${3:-3}
load_opts=${LOAD_OPTS:--c 16 --window 16}
out_opts=${OUT_OPTS:--c 8}
in_opts=${IN_OPTS:-}
keys=${KEYS:-200}
tools=$build/tools
bridge=${BRIDGE:-$tools/mllp-bridge}
for t in "$bridge" "$tools/mllp-load" "$tools/mllp-recv"; do
	[ -x "$t" ] || { echo "bridge_load: $t not built" >&2; exit 64; }
done
command -v nats-server >/dev/null ||
	{ echo "bridge_load: nats-server is not installed" >&2; exit 69; }
[ -x /usr/bin/time ] || { echo "bridge_load: /usr/bin/time is missing (apt-get install time)" >&2; exit 69; }

TMP=$(mktemp -d)
PIDS=()
cleanup() {
	local p
	# /usr/bin/time's child first, then the processes themselves.
	for p in "${PIDS[@]}"; do pkill -P "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
tck=$(getconf CLK_TCK)

# wait_line FILE PATTERN DESC: wait (30 s at most) for a line in FILE.
wait_line() {
	local end=$((SECONDS + 30))
	until grep -qs "$2" "$1"; do
		[ $SECONDS -lt $end ] || { echo "bridge_load: no '$2' from $3" >&2; cat "${1%.*}.err" >&2 2>/dev/null; exit 1; }
		sleep 0.05
	done
}

# cpu PID: its user + system time in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# The templates: one ADT^A01 per patient; mllp-load gives each message a
# unique MSH-10.
awk -v keys="$keys" 'BEGIN {
	for (i = 0; i < keys; i++)
		printf "MSH|^~\\&|MLLPLOAD|LOADFAC|RECEIVER|RECVFAC|20240101120000||ADT^A01^ADT_A01|00000000|P|2.5\r" \
		       "EVN|A01|20240101120000\r" \
		       "PID|1||P%06d^^^HOSP^MR||DOE^JANE^Q||19800101|F|||1 MAIN ST^^SPRINGFIELD^IL^62701||555-0100\r" \
		       "PV1|1|I|WARD1^101^A||||1234^SMITH^JOHN|||MED||||||||V000123\r", i
}' >"$TMP/msgs.hl7"

# start_recv NAME: mllp-recv answering N messages, under /usr/bin/time.
start_recv() {
	/usr/bin/time -o "$TMP/$1.time" -f "%U %S" "$tools/mllp-recv" --bind 127.0.0.1 \
		--quiet --count "$n" 0 >"$TMP/$1.out" 2>"$TMP/$1.err" &
	RECV_PID=$!
	PIDS+=("$RECV_PID")
	wait_line "$TMP/$1.out" "^listening on" mllp-recv
	RECV_PORT=$(sed -n '1s/.*://p' "$TMP/$1.out")
}

# run_load PORT NAME: mllp-load, timed; sets T0, T1 (s), LOAD_RATE.
run_load() {
	T0=$EPOCHREALTIME
	# shellcheck disable=SC2086
	/usr/bin/time -o "$TMP/$2.time" -f "%U %S" "$tools/mllp-load" -n "$n" $load_opts \
		-m "$TMP/msgs.hl7" --no-progress --json "$TMP/$2.json" \
		127.0.0.1 "$1" >/dev/null 2>"$TMP/$2.err" ||
		{ echo "bridge_load: mllp-load exit $? ($(tail -3 "$TMP/$2.err"))" >&2; exit 1; }
	wait "$RECV_PID" || { echo "bridge_load: mllp-recv exit $?" >&2; exit 1; }
	T1=$EPOCHREALTIME
	LOAD_RATE=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["throughput_msgs_per_s"]))' "$TMP/$2.json")
}

# us_msg TICKS: microseconds of CPU per message.
us_msg() { awk -v t="$1" -v k="$tck" -v n="$n" 'BEGIN { printf "%.1f", t / k * 1e6 / n }'; }
# time_us FILE: user + system seconds of /usr/bin/time as us per message.
time_us() { awk -v n="$n" '{ printf "%.1f", ($1 + $2) * 1e6 / n }' "$1"; }

one_run() {
	local r=$1 js port nats_pid in_pid out_pid c0 c1 i rate plain ratio
	rm -rf "$TMP/js" "$TMP/ports" && mkdir -p "$TMP/ports"
	nats-server -js -p -1 -a 127.0.0.1 -sd "$TMP/js" --ports_file_dir "$TMP/ports" \
		-l "$TMP/nats.log" &
	nats_pid=$!
	PIDS+=("$nats_pid")
	wait_line "$TMP/nats.log" "Server is ready" nats-server
	port=$(python3 -c 'import json,sys,glob; print(json.load(open(glob.glob(sys.argv[1] + "/*.ports")[0]))["nats"][0].rsplit(":", 1)[1])' "$TMP/ports")
	js=nats://127.0.0.1:$port
	start_recv recv1
	# shellcheck disable=SC2086
	"$bridge" in --nats "$js" --create-stream --listen 0 --bind 127.0.0.1 \
		$in_opts >"$TMP/in.out" 2>"$TMP/in.err" &
	in_pid=$!
	PIDS+=("$in_pid")
	wait_line "$TMP/in.out" "^listening on" "mllp-bridge in"
	local in_port
	in_port=$(sed -n '1s/.*://p' "$TMP/in.out")
	# shellcheck disable=SC2086
	"$bridge" out --nats "$js" --consumer bench --create-consumer \
		--to "127.0.0.1:$RECV_PORT" $out_opts >"$TMP/out.out" 2>"$TMP/out.err" &
	out_pid=$!
	PIDS+=("$out_pid")
	wait_line "$TMP/out.out" "^consuming" "mllp-bridge out"
	local perf=()
	if [ -n "${PERF_DIR:-}" ]; then
		mkdir -p "$PERF_DIR"
		perf record -q -g -o "$PERF_DIR/nats.$r.data" -p "$nats_pid" 2>/dev/null &
		perf+=($!)
		perf record -q -g -o "$PERF_DIR/in.$r.data" -p "$in_pid" 2>/dev/null &
		perf+=($!)
		perf record -q -g -o "$PERF_DIR/out.$r.data" -p "$out_pid" 2>/dev/null &
		perf+=($!)
		sleep 1 # perf attaches asynchronously; nothing to wait on
	fi
	c0=("$(cpu "$nats_pid")" "$(cpu "$in_pid")" "$(cpu "$out_pid")")
	run_load "$in_port" load1
	for i in "${perf[@]}"; do
		kill -INT "$i"
		wait "$i" || true
	done
	c1=("$(cpu "$nats_pid")" "$(cpu "$in_pid")" "$(cpu "$out_pid")")
	rate=$(awk -v n="$n" -v a="$T0" -v b="$T1" 'BEGIN { printf "%.0f", n / (b - a) }')
	local in_rate=$LOAD_RATE cpu_js cpu_in cpu_out cpu_recv cpu_load
	cpu_js=$(us_msg $((c1[0] - c0[0])))
	cpu_in=$(us_msg $((c1[1] - c0[1])))
	cpu_out=$(us_msg $((c1[2] - c0[2])))
	cpu_recv=$(time_us "$TMP/recv1.time")
	cpu_load=$(time_us "$TMP/load1.time")
	for i in "$out_pid" "$in_pid"; do
		kill -TERM "$i"
		wait "$i" || { echo "bridge_load: pid $i exit $? after SIGTERM" >&2; exit 1; }
	done
	kill -TERM "$nats_pid"
	wait "$nats_pid" || true # nats-server exits 1 after SIGTERM
	# The plain reference, the same mllp-load settings.
	start_recv recv2
	run_load "$RECV_PORT" load2
	plain=$(awk -v n="$n" -v a="$T0" -v b="$T1" 'BEGIN { printf "%.0f", n / (b - a) }')
	ratio=$(awk -v a="$rate" -v b="$plain" 'BEGIN { printf "%.3f", a / b }')
	printf 'run %d: bridge %s msg/s (in acked %s msg/s), plain %s msg/s (mllp-load %s), ratio %s\n' \
		"$r" "$rate" "$in_rate" "$plain" "$LOAD_RATE" "$ratio"
	printf '  CPU us/msg, bridge run: nats-server %s, in %s, out %s, mllp-recv %s, mllp-load %s; plain run: mllp-recv %s, mllp-load %s\n' \
		"$cpu_js" "$cpu_in" "$cpu_out" "$cpu_recv" "$cpu_load" \
		"$(time_us "$TMP/recv2.time")" "$(time_us "$TMP/load2.time")"
	local tot_bridge tot_plain
	tot_bridge=$(awk -v a="$cpu_js" -v b="$cpu_in" -v c="$cpu_out" -v d="$cpu_recv" -v e="$cpu_load" \
		'BEGIN { printf "%.1f", a + b + c + d + e }')
	tot_plain=$(awk -v a="$(time_us "$TMP/recv2.time")" -v b="$(time_us "$TMP/load2.time")" \
		'BEGIN { printf "%.1f", a + b }')
	printf '  CPU us/msg, all processes: bridge run %s, plain run %s: CPU ratio %s\n' "$tot_bridge" "$tot_plain" \
		"$(awk -v a="$tot_plain" -v b="$tot_bridge" 'BEGIN { printf "%.3f", a / b }')"
	printf 'row %s %s %s %s %s %s %s %s %s\n' "$rate" "$plain" "$ratio" "$cpu_js" "$cpu_in" "$cpu_out" \
		"$(awk -v a="$cpu_js" -v b="$cpu_in" -v c="$cpu_out" 'BEGIN { printf "%.1f", a + b + c }')" \
		"$tot_bridge" "$(awk -v a="$tot_plain" -v b="$tot_bridge" 'BEGIN { printf "%.3f", a / b }')" >>"$TMP/rows"
	grep -E '^(received|stored|duplicates|refused|timed_out|unavailable)=' "$TMP/in.out" | tr '\n' ' ' | sed 's/^/  in: /;s/$/\n/'
	grep -E '^(delivered|retries|redelivered|in_progress)=' "$TMP/out.out" | tr '\n' ' ' | sed 's/^/  out: /;s/$/\n/'
}

echo "bridge_load: N=$n, mllp-load $load_opts, out $out_opts, $keys patients, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= runs; r++)); do
	one_run "$r"
done
awk '
function med(col,   i, j, t, x) {
	for (i = 1; i <= NR; i++) x[i] = v[i, col] + 0
	for (i = 1; i <= NR; i++)
		for (j = i + 1; j <= NR; j++)
			if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
	return sprintf("%g (%g..%g)", x[int((NR + 1) / 2)], x[1], x[NR])
}
{ for (c = 2; c <= NF; c++) v[NR, c - 1] = $c }
END {
	printf "median of %d runs (range): bridge %s msg/s, plain %s msg/s, ratio %s\n", NR, med(1), med(2), med(3)
	printf "  CPU us/msg: nats-server %s, in %s, out %s, broker path total %s, all processes %s; CPU ratio %s\n", med(4), med(5), med(6), med(7), med(8), med(9)
}' "$TMP/rows"
echo "bridge_load: load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
