#!/usr/bin/env bash
# Every ```c block of README.md is a program: install the built library into
# a scratch prefix, build each block against it through find_package(mllp)
# and through pkg-config (-Wall -Wextra -Werror and the project's
# -Wstrict-prototypes -Wwrite-strings), then run the blocks that need nothing
# but the library's receiver.
#   readme_examples.sh BUILD_DIR SOURCE_DIR C_COMPILER MLLP_RECV|none
#
# A block is named by its first line, "/* NAME.c: ...", else block_N (N
# counts the C blocks from 1). The comment it starts with says how to run it,
# as a shell session:
#   $ mllp-recv --echo 2575 &     a receiver: started from the build tree on
#                                 127.0.0.1, port 0; the port read from its
#                                 line "listening on ADDR:PORT" replaces
#                                 2575 in the commands after it
#   $ ./NAME 127.0.0.1 2575       the program, stdin /dev/null; it must exit 0
#   expected output               each line must appear in its stdout
# A block whose comment has a "Needs:" line, or no "$ ./NAME" line, is built
# but not run; the test says which and why. A "Links: PKG..." line in it
# names pkg-config packages the block also builds against (e.g. libuv).
set -u
build=$1 src=$2 cc=$3 recv=$4
flags=(-Wall -Wextra -Werror -Wstrict-prototypes -Wwrite-strings)
# TMP (the work directory), PIDS, fail (FAILS), start_listener,
# install_prefix
source "$(dirname "$0")/lib.sh"
work=$TMP

install_prefix "$build" "$work/prefix" || exit 1
if ! pcflags=$(pkg-config --cflags --libs mllp); then
	echo "FAIL: pkg-config finds no mllp in $work/prefix" >&2
	exit 1
fi
read -ra pcflags <<<"$pcflags"

# ---- extract the blocks, in order -----------------------------------------
mkdir -p "$work/src"
awk -v dir="$work/src" '
	/^```c[[:space:]]*$/ { inb = 1; n++; name = ""; body = ""; next }
	inb && /^```/ {
		inb = 0
		if (name == "" || seen[name]++)
			name = name == "" ? "block_" n : name "_" n
		print name
		printf "%s", body > (dir "/" name ".c")
		close(dir "/" name ".c")
		next
	}
	inb {
		if (body == "" && match($0, /^\/\* *[A-Za-z_][A-Za-z0-9_]*\.c[: ]/)) {
			name = substr($0, RSTART, RLENGTH - 3)
			sub(/^\/\* */, "", name)
		}
		body = body $0 "\n"
	}
' "$src/README.md" >"$work/names"
mapfile -t names <"$work/names"
if [ ${#names[@]} -eq 0 ]; then
	echo "FAIL: no \`\`\`c block in $src/README.md" >&2
	exit 1
fi
echo "README.md: ${#names[@]} C blocks: ${names[*]}"

# links NAME: the pkg-config packages of the block's "Links:" line.
links() {
	sed -n '0,/\*\//p' "$work/src/$1.c" | sed -n 's/^.*Links: *//p' |
		head -n 1
}

# ---- build: find_package(mllp) and pkg-config, in parallel ----------------
mkdir -p "$work/cmake" "$work/pc"
{
	echo 'cmake_minimum_required(VERSION 3.25)'
	echo 'project(readme_examples C)'
	echo 'find_package(mllp REQUIRED)'
	echo 'find_package(PkgConfig REQUIRED)'
	for n in "${names[@]}"; do
		echo "add_executable($n \"$work/src/$n.c\")"
		echo "target_link_libraries($n PRIVATE mllp::mllp)"
		if [ -n "$(links "$n")" ]; then
			echo "pkg_check_modules(${n}_links REQUIRED IMPORTED_TARGET $(links "$n"))"
			echo "target_link_libraries($n PRIVATE PkgConfig::${n}_links)"
		fi
		echo "target_compile_options($n PRIVATE ${flags[*]})"
	done
} >"$work/cmake/CMakeLists.txt"
(
	cmake -S "$work/cmake" -B "$work/cmake/build" -G "Unix Makefiles" \
		-DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$work/prefix" &&
		cmake --build "$work/cmake/build" -j2 -- -k
) >"$work/cmake.log" 2>&1 &
cmake_pid=$!
for n in "${names[@]}"; do
	extra_flags=()
	if [ -n "$(links "$n")" ]; then
		# shellcheck disable=SC2046 # one package name per word
		read -ra extra_flags <<<"$(pkg-config --cflags --libs $(links "$n"))"
	fi
	"$cc" "${flags[@]}" -o "$work/pc/$n" "$work/src/$n.c" \
		"${pcflags[@]}" "${extra_flags[@]}" >"$work/pc/$n.log" 2>&1 &
	PIDS+=($!)
done
wait "${PIDS[@]}"
PIDS=()
wait "$cmake_pid"
for n in "${names[@]}"; do
	if [ ! -x "$work/cmake/build/$n" ]; then
		fail "$n: does not build through find_package(mllp)"
		grep -F "/src/$n.c:" "$work/cmake.log" | grep -m 20 -F 'error' >&2 ||
			tail -n 20 "$work/cmake.log" >&2
	fi
	if [ ! -x "$work/pc/$n" ]; then
		fail "$n: does not build through pkg-config"
		head -n 20 "$work/pc/$n.log" >&2
	fi
done
[ $FAILS -eq 0 ] && echo "built: every block, through find_package(mllp) and pkg-config"

# ---- run ---------------------------------------------------------------------
not_run=()
port_token='' port=''

# start_recv ARGS...: mllp-recv on 127.0.0.1, port 0; sets port_token, port.
start_recv() {
	local args=("$@")
	local last=$((${#args[@]} - 1))
	port_token=''
	if [ $last -ge 0 ] && [[ ${args[$last]} =~ ^[0-9]+$ ]]; then
		port_token=${args[$last]}
		unset "args[$last]"
	fi
	start_listener mllp-recv "$recv" --bind 127.0.0.1 --quiet "${args[@]}" 0 ||
		return 1
	port=$PORT
}

# run_block NAME: run the session of the block's first comment.
run_block() {
	local n=$1 bin=$work/cmake/build/$1 line cmds=() expect=() needs=''
	local in_needs=0 after_run=0
	if ! head -n 1 "$work/src/$n.c" | grep -q '^/\*'; then
		not_run+=("$n: it does not start with a comment saying how to run it")
		return
	fi
	while IFS= read -r line; do
		line=${line#/\*}
		line=${line%%\*/*}
		line=${line#"${line%%[! ]*}"}
		line=${line#\*}
		line=${line#"${line%%[! ]*}"}
		line=${line%"${line##*[! ]}"}
		if [[ $line == Needs:* ]]; then
			needs=$line in_needs=1
		elif [[ $line == Links:* ]]; then
			in_needs=0
		elif [[ $line == \$\ * ]]; then
			in_needs=0
			cmds+=("${line#\$ }")
			[[ ${line#\$ } == "./$n"* ]] && after_run=1 && expect=()
		elif [ $in_needs = 1 ] && [ -n "$line" ]; then
			needs+=" $line"
		elif [ $after_run = 1 ] && [ -n "$line" ]; then
			expect+=("$line")
		fi
	done < <(sed -n '0,/\*\//p' "$work/src/$n.c")
	if [ -n "$needs" ]; then
		not_run+=("$n: $needs")
		return
	fi
	if ! printf '%s\n' "${cmds[@]}" | grep -q "^\./$n\b"; then
		not_run+=("$n: its first comment has no '\$ ./$n' line")
		return
	fi
	local c words
	for c in "${cmds[@]}"; do
		read -ra words <<<"$c"
		[ "${words[-1]}" = '&' ] && unset 'words[-1]'
		case ${words[0]} in
		mllp-recv)
			if [ "$recv" = none ]; then
				not_run+=("$n: needs mllp-recv, which this build lacks")
				return
			fi
			start_recv "${words[@]:1}" || {
				fail "$n: its receiver did not start"
				return
			}
			;;
		"./$n")
			local args=() a
			for a in "${words[@]:1}"; do
				[ -n "$port_token" ] && [ "$a" = "$port_token" ] && a=$port
				args+=("$a")
			done
			echo "run: ./$n${args[*]:+ ${args[*]}}"
			timeout 60 "$bin" "${args[@]}" </dev/null >"$work/$n.out" \
				2>"$work/$n.err"
			local rc=$?
			sed 's/^/  | /' "$work/$n.out"
			if [ $rc -ne 0 ]; then
				fail "$n: ./$n ${args[*]} exited $rc"
				cat "$work/$n.err" >&2
				return
			fi
			local e
			for e in "${expect[@]}"; do
				if ! grep -Fxq -- "$e" "$work/$n.out"; then
					fail "$n: its comment says it prints '$e'; it did not (above)"
				fi
			done
			;;
		*)
			not_run+=("$n: it runs '$c', which this test does not start")
			return
			;;
		esac
	done
}

for n in "${names[@]}"; do
	[ -x "$work/cmake/build/$n" ] || continue
	run_block "$n"
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait "${PIDS[@]}" 2>/dev/null
	PIDS=()
done

for r in "${not_run[@]}"; do
	echo "not run: $r"
done
if [ $FAILS -ne 0 ]; then
	echo "readme_examples: $FAILS failure(s)" >&2
	exit 1
fi
echo "readme_examples: ${#names[@]} blocks built, $((${#names[@]} - ${#not_run[@]})) run"
