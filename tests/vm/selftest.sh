#!/usr/bin/env bash
# Proves that tests/vm/run.sh gives a real cgroup v2 host: boots the VM and,
# as the unprivileged test user inside it, checks that
#   - the user is not root and sits in the delegated subtree of a pure cgroup2
#     hierarchy with the memory, pids and cpu controllers;
#   - in a child cgroup it creates (memory.max 32M, pids.max 16):
#     (a) a process allocating 100 MB is OOM-killed (memory.events oom_kill),
#     (b) a fork loop cannot exceed 16 pids,
#     (c) cpu.max throttles a busy loop, (d) cgroup.freeze freezes;
#   - (e) unshare -Ur works, (f) newuidmap/newgidmap map the user's
#     /etc/subuid range (setuid works through the 9p root),
#     (g) overlayfs with userxattr mounts in a user namespace on the scratch
#     dir and handles whiteouts and opaque dirs, (h) /dev/net/tun opens.
# Prints PASS/FAIL per check; exits 0 only if every check passes.
#
#   tests/vm/selftest.sh [run.sh options, e.g. --user NAME --verbose]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Runs inside the VM, as the test user (shipped there with `declare -f`).
guest_checks() {
	set -u
	local failed=0 passed=0 cg=$BURROW_VM_CGROUP
	pass() { echo "PASS: $*"; passed=$((passed + 1)); }
	fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
	check() { # check DESCRIPTION COMMAND...
		local what=$1
		shift
		if "$@"; then pass "$what"; else fail "$what"; fi
	}
	field() { # field FILE KEY: the value of "KEY value" in a flat-keyed file
		local k v
		while read -r k v; do [[ $k == "$2" ]] && echo "$v" && return; done <"$1"
		echo 0
	}
	# Run a command with its process moved into cgroup $1 first (echo 0
	# moves the writer itself; then exec keeps the pid).
	in_cgroup() {
		local dir=$1
		shift
		sh -c 'echo 0 >"$1/cgroup.procs" && shift && exec "$@"' sh "$dir" "$@"
	}

	echo "== id: $(id)"
	check "runs as an unprivileged user" test "$(id -u)" -ne 0
	echo "== /proc/self/cgroup:"
	cat /proc/self/cgroup
	check "pure cgroup v2 (one 0:: line), inside the delegated ${cg#/sys/fs/cgroup}" \
		test "$(cat /proc/self/cgroup)" = "0::${BURROW_VM_CGROUP_LEAF#/sys/fs/cgroup}"
	echo "== $cg/cgroup.controllers: $(<"$cg/cgroup.controllers")"
	for c in memory pids cpu; do
		check "controller $c delegated" grep -qw "$c" "$cg/cgroup.controllers"
	done

	local child=$cg/selftest
	mkdir "$child"
	check "child cgroup: memory.max=32M, pids.max=16 written by the user" \
		sh -c "echo 32M >$child/memory.max && echo 16 >$child/pids.max"
	echo 0 >"$child/memory.swap.max" 2>/dev/null || true

	# (a) OOM: dd reads 100 MB of zeroes into one 100 MB buffer.
	local rc=0
	in_cgroup "$child" dd if=/dev/zero of=/dev/null bs=100M count=1 2>/dev/null || rc=$?
	echo "== (a) dd bs=100M: exit $rc; memory.events: $(tr '\n' ' ' <"$child/memory.events")"
	echo "   memory.peak: $(cat "$child/memory.peak" 2>/dev/null || echo n/a)"
	check "(a) 100 MB allocation OOM-killed (exit 137, oom_kill >= 1)" \
		test "$rc" -eq 137 -a "$(field "$child/memory.events" oom_kill)" -ge 1

	# (b) pids: dash stops at the first failed fork; the sleeps it did start
	# stay in the cgroup until cgroup.kill.
	# shellcheck disable=SC2016 # expanded by the inner sh
	in_cgroup "$child" sh -c 'i=0; while [ $i -lt 40 ]; do sleep 60 & i=$((i + 1)); done' 2>/dev/null || true
	local current peak max_events
	current=$(<"$child/pids.current")
	peak=$(cat "$child/pids.peak" 2>/dev/null || echo "$current")
	max_events=$(field "$child/pids.events" max)
	echo "== (b) fork loop of 40: pids.current $current, pids.peak $peak, pids.events max $max_events"
	check "(b) fork loop capped at 16 pids (peak <= 16, max events >= 1)" \
		test "$peak" -le 16 -a "$peak" -ge 10 -a "$max_events" -ge 1
	echo 1 >"$child/cgroup.kill"

	# (c) cpu.max 10% for a 1 s busy loop.
	echo "10000 100000" >"$child/cpu.max"
	in_cgroup "$child" timeout 1 sh -c 'while :; do :; done' || true
	echo "== (c) cpu.max 10000 100000, 1 s busy loop: cpu.stat $(grep -E 'nr_throttled|usage_usec' "$child/cpu.stat" | tr '\n' ' ')"
	check "(c) cpu.max throttles (nr_throttled >= 1)" test "$(field "$child/cpu.stat" nr_throttled)" -ge 1
	echo max >"$child/cpu.max"

	# (d) freezer: cgroup.freeze, then cgroup.events says frozen 1.
	sh -c 'echo 0 >"$1/cgroup.procs" && exec sleep 60' sh "$child" &
	local sleeper=$!
	sleep 0.3
	echo 1 >"$child/cgroup.freeze"
	local frozen=0
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		frozen=$(field "$child/cgroup.events" frozen)
		[[ $frozen == 1 ]] && break
		sleep 0.2
	done
	echo "== (d) cgroup.freeze 1: cgroup.events frozen $frozen; state of pid $sleeper: $(awk '/^State/ {print $2, $3}' "/proc/$sleeper/status")"
	check "(d) cgroup.freeze freezes" test "$frozen" = 1
	echo 0 >"$child/cgroup.freeze"
	echo 1 >"$child/cgroup.kill"
	wait "$sleeper" 2>/dev/null || true

	# (e) unprivileged user namespace.
	echo "== (e) unshare -Ur id -u: $(unshare -Ur id -u 2>&1)"
	check "(e) unshare -Ur true" unshare -Ur true

	# (f) newuidmap/newgidmap (setuid root, read from the 9p root).
	local start count
	IFS=: read -r _ start count < <(grep "^$(id -un):" /etc/subuid) || true
	echo "== (f) /etc/subuid range: ${start:-none}:${count:-none}"
	local maps
	maps=$(unshare --map-root-user --map-users="${start:-0},1,${count:-0}" \
		--map-groups="${start:-0},1,${count:-0}" cat /proc/self/uid_map /proc/self/gid_map 2>&1) || true
	printf '   %s\n' "${maps//$'\n'/$'\n'   }"
	check "(f) newuidmap/newgidmap map the subuid/subgid range" \
		test "$(echo "$maps" | awk -v s="${start:-x}" '$2 == s' | wc -l)" -eq 2

	# (g) overlayfs, userxattr, in a user+mount namespace on the scratch dir:
	# remove a lower file (whiteout) and a lower dir, then recreate it (opaque).
	local o=$BURROW_VM_SCRATCH/selftest-overlay out
	mkdir -p "$o"/{lower/dir,upper,work,merged}
	echo lower >"$o/lower/file"
	echo lower >"$o/lower/dir/inner"
	# shellcheck disable=SC2016 # expanded by the inner sh
	out=$(unshare -Urm sh -c '
		o=$1
		mount -t overlay overlay -o "lowerdir=$o/lower,upperdir=$o/upper,workdir=$o/work,userxattr" "$o/merged" &&
		rm "$o/merged/file" && rm -r "$o/merged/dir" && mkdir "$o/merged/dir" &&
		test ! -e "$o/merged/file" && test -z "$(ls -A "$o/merged/dir")" && echo ok' sh "$o" 2>&1) || true
	echo "== (g) overlay on $(stat -f -c %T "$BURROW_VM_SCRATCH"): $out"
	check "(g) overlayfs userxattr in a userns: whiteout and opaque dir" test "$out" = ok

	# (h) /dev/net/tun for future networking tests.
	check "(h) /dev/net/tun opens" sh -c 'exec 3<>/dev/net/tun'

	echo "== $passed passed, $failed failed"
	((failed == 0))
}

if [[ ${BURROW_VM:-} == 1 ]]; then
	guest_checks
	exit
fi
start=$SECONDS
rc=0
"$here/run.sh" "$@" -- bash -c "$(declare -f guest_checks); guest_checks" || rc=$?
echo "selftest: exit $rc, $((SECONDS - start)) s in all"
exit "$rc"
