#!/bin/bash
# The cgroup v2 checks of tests/cgroups.rs, run in ONE tests/vm boot (or
# directly on a host with a delegated cgroup, BURROW_TEST_CGROUP_DIRECT=1) as
# an unprivileged user. Prints one "key=value" line per measurement and
# leaves JSON documents in $BURROW_VM_OUT; the Rust test asserts on them.
#
# In the VM (run.sh --login systemd) the checks start in a login session's
# cgroup, which is not delegated, with the user's systemd on the session
# bus: every container's cgroup comes from a transient scope burrow asks
# systemd for over D-Bus. Section 0 also covers burrow started inside a
# delegated cgroup (systemd-run --user --scope -p Delegate=yes) and a session
# with no systemd to ask.
#
#   cgroup-checks.sh DIR     DIR holds the burrow binary and busybox.tar
set -u
dir=$1
B=$dir/burrow
out=${BURROW_VM_OUT:?}
export BURROW_ROOT=${BURROW_VM_SCRATCH:?}/store
kv() { echo "$1=$2"; }
field() { # field FILE KEY: "KEY value" lines
	local k v
	while read -r k v; do [[ $k == "$2" ]] && echo "$v" && return; done <"$1"
	echo -1
}
cgroup_of() { # the running container's cgroup dir, from inspect
	"$B" inspect "$1" | sed -n 's/^ *"Cgroup": "\(.*\)",\{0,1\}$/\1/p' | head -n1
}
usec() { field "$1/cpu.stat" usage_usec; }
now_us() { echo "${EPOCHREALTIME/./}"; }

# Who runs burrow here: must be the unprivileged test user, not root.
kv uid "$(id -u)"

"$B" import "$dir/busybox.tar" busybox --change 'CMD ["sh"]' >/dev/null
kv import $?

# Where the checks themselves run (a session scope in the VM), and where
# burrow says its containers' cgroups will come from.
kv mode "${BURROW_VM_LOGIN:-direct}"
kv own_cgroup "$(cut -d: -f3 /proc/self/cgroup)"
"$B" info --format json >"$out/info.json"

# 0. Placement: a foreground container with a limit, PID 1's own cgroup.
kv placed "$("$B" run --rm -m 64m busybox cat /proc/self/cgroup | tr '\n' ' ')"
kv placed_rc "${PIPESTATUS[0]}"
if [[ ${BURROW_VM_LOGIN:-} == systemd ]]; then
	# Inside a scope that is already delegated, burrow uses it as it is (no
	# second scope): the README's systemd-run line, with a real OOM kill.
	kv inscope "$(systemd-run --user --scope -p Delegate=yes -q "$B" run --rm -m 64m busybox cat /proc/self/cgroup | tr '\n' ' ')"
	systemd-run --user --scope -p Delegate=yes -q \
		"$B" run --name oom-inscope -m 32m busybox dd if=/dev/zero of=/dev/null bs=100M count=1 2>/dev/null
	kv inscope_oom_rc $?
	"$B" inspect oom-inscope >"$out/oom-inscope.json"
	"$B" rm oom-inscope >/dev/null
	# No systemd to ask (no session bus): no limits runs without a cgroup,
	# a limit is refused with one line.
	nobus=(env DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/bus)
	"${nobus[@]}" "$B" run --name nobus busybox true
	kv nobus_plain_rc $?
	"$B" inspect nobus >"$out/nobus.json"
	"$B" rm nobus >/dev/null
	"${nobus[@]}" "$B" run --rm -m 32m busybox true 2>"$out/nobus-limited.err"
	kv nobus_limited_rc $?
	# BURROW_SYSTEMD=0: the bus is there, but burrow does not ask it.
	BURROW_SYSTEMD=0 "$B" run --rm -m 32m busybox true 2>"$out/nosystemd.err"
	kv nosystemd_rc $?
fi

# 1. OOM: dd reads 100 MB into one buffer under a 32 MB limit.
"$B" run --name oom -m 32m busybox dd if=/dev/zero of=/dev/null bs=100M count=1 2>/dev/null
kv oom_rc $?
"$B" inspect oom >"$out/oom.json"
"$B" rm oom >/dev/null
kv oom_rm $?

# 2. pids: a fork loop under --pids-limit 64; then stop and rm still work.
# (ash exits when a fork fails: the loop runs in a subshell, and PID 1 then
# execs, which needs no fork.)
"$B" run -d --name bomb --pids-limit 64 busybox sh -c \
	'(i=0; while [ $i -lt 300 ]; do sleep 600 & i=$((i+1)); done) 2>/dev/null; exec sleep 600' >/dev/null
kv bomb_run $?
sleep 3
cg=$(cgroup_of bomb)
kv bomb_cgroup "$cg"
base=${cg%/*}
kv base "$base"
kv bomb_pids_max "$(cat "$cg/pids.max")"
kv bomb_pids_current "$(cat "$cg/pids.current")"
kv bomb_pids_events_max "$(field "$cg/pids.events" max)"
kv bomb_status "$("$B" ps -a | grep -c 'Up .*bomb$')"
t0=$(now_us)
"$B" stop -t 1 bomb >/dev/null
kv bomb_stop $?
kv bomb_stop_ms $((($(now_us) - t0) / 1000))
"$B" inspect bomb >"$out/bomb.json"
"$B" rm bomb >/dev/null
kv bomb_rm $?
kv bomb_cgroup_gone "$([[ -e $cg ]] && echo no || echo yes)"

# 3. --cpus 0.5: a busy loop, measured from cpu.stat over wall-clock time.
"$B" run -d --name busy --cpus 0.5 busybox sh -c 'while :; do :; done' >/dev/null
kv busy_run $?
sleep 1
cg=$(cgroup_of busy)
kv busy_cpu_max "$(cat "$cg/cpu.max")"
u0=$(usec "$cg") t0=$(now_us)
sleep 4
u1=$(usec "$cg") t1=$(now_us)
kv busy_usage_us $((u1 - u0))
kv busy_wall_us $((t1 - t0))
"$B" stats --no-stream --format json busy >"$out/busy-stats.json"
kv busy_stats $?

# 4. pause with the freezer: frozen, and CPU time stops.
"$B" pause busy >/dev/null
kv pause_rc $?
"$B" inspect busy >"$out/busy-paused.json"
kv freeze_file "$(cat "$cg/cgroup.freeze")"
kv frozen_event "$(field "$cg/cgroup.events" frozen)"
u0=$(usec "$cg")
sleep 2
u1=$(usec "$cg")
kv paused_usage_us $((u1 - u0))
"$B" stats --no-stream --format json busy >"$out/paused-stats.json"
"$B" unpause busy >/dev/null
kv unpause_rc $?
kv thawed_file "$(cat "$cg/cgroup.freeze")"
"$B" rm -f busy >/dev/null
kv busy_rm $?
kv busy_cgroup_gone "$([[ -e $cg ]] && echo no || echo yes)"

# 5. stats against the cgroup files of an idle container.
"$B" run -d --name idle -m 64m busybox sleep 600 >/dev/null
kv idle_run $?
sleep 1
cg=$(cgroup_of idle)
"$B" stats --no-stream --format json idle >"$out/idle-stats.json"
kv idle_stats $?
kv idle_memory_current "$(cat "$cg/memory.current")"
kv idle_memory_max "$(cat "$cg/memory.max")"
kv idle_pids_current "$(cat "$cg/pids.current")"
# exec joins the container's cgroup (from the login session, systemd moves
# the joiner: the session's cgroup and the scope share no delegated parent).
kv idle_cgroup "${cg#/sys/fs/cgroup}"
kv exec_cgroup "$("$B" exec idle cat /proc/self/cgroup)"
kv exec_rc $?
"$B" rm -f idle >/dev/null
kv idle_rm $?

# 6. Nothing left behind: no container cgroup in the delegated subtree, and
# (under systemd) no scope once its monitor has exited.
if [[ ${BURROW_VM_LOGIN:-} == systemd ]]; then
	manager=/sys/fs/cgroup/user.slice/user-$(id -u).slice/user@$(id -u).service
	for _ in $(seq 50); do
		left=$(find "$manager" -name 'burrow-*' | wc -l)
		((left == 0)) && break
		sleep 0.2
	done
	find "$manager" -name 'burrow-*' >&2
else
	left=$(find "$base" -mindepth 1 -maxdepth 1 -name 'burrow-*' | wc -l)
fi
kv leftover_cgroups "$left"
kv done 1
