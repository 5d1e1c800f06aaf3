#!/bin/sh
# Median of N runs of e2e_pool, row by row. Loopback figures on a shared
# 2-vCPU machine swing run to run (scheduling placement: the same or the
# other CPU as the receiver); one run is not a measurement.
#
# usage: bench/e2e_median.sh BUILD/bench/e2e_pool [runs=5] [seconds=2] [conns]
#   e.g. E2E_BACKENDS=io_uring bench/e2e_median.sh build-perf/bench/e2e_pool 5 2 64
# Prints one line per row: the medians of msg/s, us/msg and the two ratios
# (each ratio is taken against the raw client of the same run).
# Also the pipelining rows of e2e_load (E2E_WINDOWS set: a `win` column),
#   e.g. E2E_ROUNDS=1 E2E_WINDOWS=1,16 bench/e2e_median.sh build/bench/e2e_load 5 1 64
# one line per window and connection count ("w16 c64 load").
bin=$1
runs=${2:-5}
secs=${3:-2}
conns=$4
i=0
while [ "$i" -lt "$runs" ]; do
	if [ -n "$conns" ]; then "$bin" "$secs" "$conns"; else "$bin" "$secs"; fi
	i=$((i + 1))
done | awk '
function med(key, col,   n, i, j, t, x) {
	n = cnt[key]
	for (i = 1; i <= n; i++) x[i] = v[key, col, i] + 0
	for (i = 1; i <= n; i++)
		for (j = i + 1; j <= n; j++)
			if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
	return x[int((n + 1) / 2)]
}
$1 == "conns" { next }
$1 == "win" { load = 1; next }
load && $1 ~ /^[0-9]+$/ && NF >= 11 {
	# e2e_load: win conns raw raw-us load load-us tput [range] cpu [range] cpu-run
	key = "w" $1 " c" $2 " load"
	if (!(key in cnt)) order[++no] = key
	n = ++cnt[key]
	v[key, 1, n] = $3; v[key, 2, n] = $4; v[key, 3, n] = $5
	v[key, 4, n] = $6; v[key, 5, n] = $7; v[key, 6, n] = $9
	next
}
$1 ~ /^[0-9]+$/ {
	c = $1; key = c " " $2 " pool"
	if (!(key in cnt)) order[++no] = key
	n = ++cnt[key]
	v[key, 1, n] = $3; v[key, 2, n] = $4; v[key, 3, n] = $5
	v[key, 4, n] = $6; v[key, 5, n] = $7; v[key, 6, n] = $8
	next
}
NF == 5 || ($1 == "cb" && NF == 6) {
	# continuation rows: [cb] backend pool-msg/s pool-us/msg tput cpu
	kind = ($1 == "cb") ? "cb" : "pool"
	b = ($1 == "cb") ? $2 : $1
	off = ($1 == "cb") ? 3 : 2
	key = c " " b " " kind
	if (!(key in cnt)) order[++no] = key
	n = ++cnt[key]
	v[key, 3, n] = $(off); v[key, 4, n] = $(off + 1)
	v[key, 5, n] = $(off + 2); v[key, 6, n] = $(off + 3)
}
END {
	printf "%-22s %10s %8s %10s %8s %7s %7s  (median of %d)\n", "row",
	    "raw msg/s", "raw us", "msg/s", "us/msg", "tput", "cpu", cnt[order[1]]
	for (k = 1; k <= no; k++) {
		key = order[k]
		raw = (key ~ / (pool|load)$/ && v[key, 1, 1] != "")
		printf "%-22s %10s %8s %10.0f %8.2f %6.2fx %6.2fx\n", key,
		    raw ? sprintf("%.0f", med(key, 1)) : "",
		    raw ? sprintf("%.2f", med(key, 2)) : "",
		    med(key, 3), med(key, 4), med(key, 5), med(key, 6)
	}
}'
