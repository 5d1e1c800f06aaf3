#!/usr/bin/env bash
# A bare clone works: the README's set-up commands, run as CI runs them
# (CI=true) in a copy of this tree that sits alone in an empty temporary
# folder, with nothing beside it.
# usage: clone_test.sh SRC_DIR
#
# The copy is a git clone of SRC_DIR plus what is not committed yet: the
# changes to tracked files and the untracked files git does not ignore, so
# a run tests what is in the tree. The commands are read from README.md's
# first ```sh block (trailing # comments dropped), so the README cannot
# drift from what is tested: the first must build and its load report show
# messages acknowledged, the second (the suite's set-up, build and unit
# label: inside the clone, .ci/test leaves the other labels, which run the
# same sources again, to the outer run) must pass. Inside the clone this test skips (exit 77): it does not run
# itself again.
set -euo pipefail
src=$(cd "$1" && pwd)
start=$SECONDS

if [ -n "${MLLP_CLONE_TEST_INNER:-}" ]; then
	echo "skipped: this tree is the bare-clone test's own clone" \
		"(MLLP_CLONE_TEST_INNER is set); the outer run checks the clone"
	exit 77
fi
if ! command -v git >/dev/null; then
	echo "skipped: git not found (apt-get install git): cannot clone $src"
	exit 77
fi
if ! git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	echo "skipped: $src is not a git checkout: nothing to clone"
	exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
clone=$tmp/x/libmllp
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# ---- the commands, from README.md ---------------------------------------------
cmds=()
while IFS= read -r line; do
	line=$(printf '%s' "$line" | sed -E 's/[[:space:]]+#.*$//; s/^[[:space:]]+//')
	[ -n "$line" ] && cmds+=("$line")
done < <(awk '/^```sh[[:space:]]*$/ { inside = 1; next }
	inside && /^```/ { exit }
	inside { print }' "$src/README.md")
[ ${#cmds[@]} -eq 2 ] ||
	fail "README.md's first \`\`\`sh block has ${#cmds[@]} commands, want 2: ${cmds[*]:-none}"
echo "README commands:"
printf '  %s\n' "${cmds[@]}"

# ---- the copy -------------------------------------------------------------------
mkdir -p "$tmp/x"
git clone -q "$src" "$clone"
git -C "$src" diff HEAD --binary >"$tmp/tree.patch"
if [ -s "$tmp/tree.patch" ]; then
	git -C "$clone" apply --whitespace=nowarn "$tmp/tree.patch" ||
		fail "uncommitted changes of $src do not apply to its HEAD"
fi
git -C "$src" ls-files -z --others --exclude-standard |
	tar -C "$src" --null -T - -cf - | tar -C "$clone" -xf -
echo "clone: $clone ($(git -C "$src" rev-parse --short HEAD)," \
	"$(git -C "$clone" status --porcelain --untracked-files=all | wc -l) files changed or added)"
[ "$(ls -A "$tmp/x")" = libmllp ] || fail "the clone has neighbours: $(ls -A "$tmp/x")"

# run N LOG: the Nth README command in the clone, as CI runs it.
run() {
	local t0=$SECONDS rc=0
	(cd "$clone" && env -u BUILD_DIR CI=true MLLP_CLONE_TEST_INNER=1 \
		bash -c "${cmds[$1]}") >"$2" 2>&1 </dev/null || rc=$?
	echo "\$ ${cmds[$1]}: exit $rc after $((SECONDS - t0)) s"
	return $rc
}

if ! run 0 "$tmp/first.log"; then
	tail -n 60 "$tmp/first.log"
	fail "the first README command failed"
fi
# The load report: "  accepted     N", N > 0.
grep -E '^mllp-load: |^  (sent|accepted|failed) ' "$tmp/first.log" || true
accepted=$(sed -nE 's/^  accepted +([0-9]+)$/\1/p' "$tmp/first.log" | tail -n 1)
[ -n "$accepted" ] && [ "$accepted" -gt 0 ] ||
	fail "the load report shows no message acknowledged (accepted: ${accepted:-missing})"

if ! run 1 "$tmp/second.log"; then
	grep -E -A 40 'tests FAILED|Errors while running' "$tmp/second.log" ||
		tail -n 80 "$tmp/second.log"
	fail "the second README command failed"
fi
grep -E 'Test +#|tests passed|tests failed out of' "$tmp/second.log" || true
grep -q '^bare-clone check: labels integration, fuzz, sanitize, config and clone' "$tmp/second.log" ||
	fail "the clone's test command did not leave the heavy labels to this run"
echo "bare clone: both README commands pass ($accepted messages acknowledged)" \
	"in $((SECONDS - start)) s"
