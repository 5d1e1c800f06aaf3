#!/usr/bin/env bash
# Run one libFuzzer target for a bounded time over a scratch copy of seeds.
# usage: run_fuzz.sh TARGET SECONDS SEED_DIR...
set -euo pipefail
target=$1 seconds=$2; shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
for d in "$@"; do
  cp -r "$d"/. "$work/corpus/"
done
chmod -R u+w "$work/corpus"
"$target" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=1200000 \
  -timeout=10 -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" 2>&1 | tail -n 25
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
  for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
    [ -e "$f" ] || continue
    echo "reproducer $f:"; od -c "$f" | head -n 20
  done
fi
exit "$status"
