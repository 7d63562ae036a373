#!/bin/bash
# Second stage of the tests/vm guest, run as PID 1 after the initramfs has
# switch_rooted into the host's root (shared read-only over 9p). It turns the
# read-only host view into a usable cgroup v2 host, then runs the job that
# tests/vm/run.sh left in the writable 9p share "burrowjob":
#
#   1. kernel filesystems: proc, sysfs, devtmpfs, devpts (newinstance), shm;
#   2. writable /run, /var/tmp (tmpfs) and /tmp (the ext4 scratch disk): the
#      shared root is read-only; host paths the caller asked for under them
#      are bound back at the same place;
#   3. modules and sysctls the tests need (tun, overlay, fuse; userns);
#   4. cgroup2 at /sys/fs/cgroup, a subtree delegated to the test user the way
#      systemd's Delegate=yes does it (see "Delegation" in the kernel's
#      Documentation/admin-guide/cgroup-v2.rst);
#   5. the command, moved into a leaf of that subtree while still root, then
#      exec'd through setpriv as the test user (su/runuser would fork and
#      leave a root-owned parent in the cgroup, which blocks enabling
#      controllers there), its stdout/stderr/exit code written to the share;
#   6. power off.
#
# With BURROW_VM_LOGIN=systemd in job.env (run.sh --login systemd), 4 and 5
# look like a user logged in on a systemd host instead: the delegated cgroup
# is user.slice/user-UID.slice/user@UID.service, where the user's own
# `systemd --user` runs with its D-Bus user bus, and the command runs in the
# root-owned user.slice/user-UID.slice/session-1.scope next to it. A system
# bus with a stand-in for PID 1's AttachProcessesToUnit (systemd1-stub.py)
# lets that manager move session processes into its scopes, as on a host.
#
# PID 1 must never exit (the kernel would panic), so this script does not use
# `set -e`: every failure goes through die(), which records why and powers off.
set -uo pipefail
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

# Each exec of a dynamically linked program costs 0.2-0.4 s under TCG (mount
# and id: about 0.35 s), a static busybox applet about 0.03 s: the setup uses
# busybox applets (busybox-static is installed by run.sh; it is also the
# initramfs's busybox) and bash builtins.
for applet in mount umount mkdir mkfifo chown chmod mknod hostname ip ln touch sync tail sleep; do
	eval "$applet() { busybox $applet \"\$@\"; }"
done

JOB=/run/burrow-vm/job
# This script's directory, as the host sees it: read through $HOSTROOT once
# /tmp and friends are covered (a checkout under /tmp is CI's usual place).
HERE=${BASH_SOURCE[0]%/*}
HOSTROOT=/run/burrow-vm/hostroot

mountpoint() { # mountpoint -q PATH, from /proc/self/mountinfo (no applet)
	local _id _parent _dev _root point _rest
	while read -r _id _parent _dev _root point _rest; do
		[[ $point == "$2" ]] && return 0
	done </proc/self/mountinfo 2>/dev/null
	return 1
}

log() { echo "burrow-vm: $*" >/dev/console; }

power_off() {
	sync
	busybox poweroff -f 2>/dev/null
	echo o >/proc/sysrq-trigger
	sleep 30
}

die() {
	log "guest setup failed: $*"
	if mountpoint -q "$JOB"; then
		echo "$*" >"$JOB/boot-error"
	fi
	power_off
}

# --- 1. kernel filesystems -------------------------------------------------
mount -t proc -o nosuid,nodev,noexec proc /proc || die "mount /proc"
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || die "mount /sys"
# burrow.trace on the kernel command line (BURROW_VM_APPEND=burrow.trace):
# trace this script, with timestamps, on the serial console.
if [[ " $(</proc/cmdline) " == *" burrow.trace "* ]]; then
	PS4='+ $EPOCHREALTIME '
	exec 2>/dev/console
	set -x
fi
mountpoint -q /dev || mount -t devtmpfs -o nosuid,mode=755 devtmpfs /dev || die "mount /dev"
# newinstance: a private devpts, as a container host has; ptmxmode so that
# unprivileged users can open /dev/pts/ptmx (and /dev/ptmx resolves to it).
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts /dev/pts ||
	die "mount /dev/pts"
mount -t tmpfs -o nosuid,nodev,mode=1777 shm /dev/shm || die "mount /dev/shm"
[[ -e /dev/fd ]] || ln -s /proc/self/fd /dev/fd

# --- 2. writable places ----------------------------------------------------
mount -t tmpfs -o nosuid,nodev,mode=755 run /run || die "mount /run"
mkdir -p "$JOB" "$HOSTROOT"
mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=262144 burrowjob "$JOB" ||
	die "mount the job share (tag burrowjob)"
# A non-recursive bind of the shared root shows the host's own /tmp, /var/tmp
# and /run underneath the tmpfs mounted over them next.
mount --bind / "$HOSTROOT" || die "bind the host root"
mount -o remount,bind,ro "$HOSTROOT" || die "make $HOSTROOT read-only"
# /tmp: the ext4 scratch disk run.sh made (user.* xattrs, which tmpfs lacks
# in this kernel and overlayfs in a user namespace needs); tmpfs without one.
if [[ -b /dev/vda ]]; then
	mount -t ext4 -o nosuid,nodev,noatime /dev/vda /tmp || die "mount the scratch disk on /tmp"
	chmod 1777 /tmp
else
	mount -t tmpfs -o nosuid,nodev,mode=1777 tmp /tmp || die "mount /tmp"
fi
mount -t tmpfs -o nosuid,nodev,mode=1777 vartmp /var/tmp || die "mount /var/tmp"

# shellcheck source=/dev/null
source "$JOB/job.env" || die "read $JOB/job.env"
# job.env (written by run.sh) sets: BURROW_VM_USER, _UID, _GID, _HOME (looked
# up on the host), BURROW_VM_CWD, BURROW_VM_LOGIN ("" or systemd), and the
# arrays BURROW_VM_SHARES, BURROW_VM_ENVS and BURROW_VM_CMD.
login=${BURROW_VM_LOGIN:-}
case "$login" in
"" | systemd) ;;
*) die "unknown login mode '$login'" ;;
esac
for p in "${BURROW_VM_SHARES[@]}"; do
	mountpoint -q "$p" 2>/dev/null && continue
	if [[ -d "$HOSTROOT$p" ]]; then
		mkdir -p "$p"
	elif [[ -e "$HOSTROOT$p" ]]; then
		mkdir -p "${p%/*}" && touch "$p"
	else
		die "shared path $p does not exist on the host"
	fi
	mount --bind "$HOSTROOT$p" "$p" || die "bind $p"
done

user=$BURROW_VM_USER uid=$BURROW_VM_UID gid=$BURROW_VM_GID home=$BURROW_VM_HOME
scratch=/tmp/burrow-vm-scratch
mkdir -p "$scratch/home" "/run/user/$uid" || die "make the scratch dirs"
chown "$uid:$gid" "$scratch" "$scratch/home" "/run/user/$uid"
chmod 700 "/run/user/$uid"

# --- 3. modules and sysctls -------------------------------------------------
hostname burrow-vm
ip link set lo up
# The initramfs loaded these if it could; modprobe whatever is still missing
# (the guest runs the kernel whose modules are in the shared /lib/modules).
for m in tun overlay fuse; do
	[[ -d /sys/module/$m ]] || /sbin/modprobe "$m" || log "modprobe $m failed (continuing)"
done
if [[ ! -e /dev/net/tun ]]; then
	mkdir -p /dev/net && mknod -m 666 /dev/net/tun c 10 200
fi
chmod 666 /dev/net/tun /dev/fuse 2>/dev/null
# Debian kernels gate unprivileged user namespaces behind this sysctl.
if [[ -w /proc/sys/kernel/unprivileged_userns_clone ]]; then
	echo 1 >/proc/sys/kernel/unprivileged_userns_clone
fi

# --- 4. cgroup v2 and the delegated subtree ----------------------------------
# Mount options as systemd uses them on a cgroup v2 host.
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup ||
	mount -t cgroup2 cgroup2 /sys/fs/cgroup || die "mount cgroup2"
cg=/sys/fs/cgroup
enable_all() { # enable in $1's subtree_control every controller $1 has
	local c
	for c in $(<"$1/cgroup.controllers"); do
		echo "+$c" >"$1/cgroup.subtree_control" 2>/dev/null ||
			log "cannot enable $c in $1 (continuing)"
	done
}
enable_all "$cg"
if [[ $login == systemd ]]; then
	# What systemd and pam_systemd make for a logged-in user: the user's
	# manager in user@UID.service (delegated), the login's processes in
	# session-1.scope (not delegated: root's, like every file in it). The
	# controllers a systemd host hands down to user@.service, and io and
	# cpuset, which it enables as soon as any unit asks for them.
	slice=$cg/user.slice/user-$uid.slice
	delegated=$slice/user@$uid.service
	leaf=$slice/session-1.scope
	mkdir -p "$delegated" "$leaf" || die "mkdir $delegated $leaf"
	for d in "$cg/user.slice" "$slice"; do
		echo "+cpu +cpuset +io +memory +pids" >"$d/cgroup.subtree_control" ||
			die "enable cpu cpuset io memory pids in $d"
	done
	chown "$uid:$gid" "$delegated" "$delegated"/cgroup.{procs,subtree_control,threads} ||
		die "chown $delegated"
	# What the user's manager may hand down; it enables them itself.
	controllers=$(<"$delegated/cgroup.controllers")
else
	delegated=$cg/burrow-test
	leaf=$delegated/init
	mkdir -p "$leaf" || die "mkdir $leaf"
	enable_all "$delegated"
	# Delegate=yes: the directory and the three files that move processes and
	# hand controllers down become the user's; the limits on the delegated
	# cgroup itself (memory.max, ...) stay root's.
	chown "$uid:$gid" "$delegated" "$delegated"/cgroup.{procs,subtree_control,threads} ||
		die "chown $delegated"
	chown -R "$uid:$gid" "$leaf" || die "chown $leaf"
	controllers=$(<"$delegated/cgroup.subtree_control")
fi

# --- 4b. the login (BURROW_VM_LOGIN=systemd) ----------------------------------
# A system bus, PID 1's part of it (systemd1-stub.py), and the user's systemd
# manager with its user bus. Their output goes to the job dir's login/
# (BURROW_VM_KEEP=1 keeps it); a failure also shows its tail on the console.
user_bus=/run/user/$uid/bus
login_envs=()
if [[ $login == systemd ]]; then
	logs=$JOB/login
	# /run/systemd/system is how sd_booted() tells a systemd host, and
	# systemd --user refuses to run without it ("the system has not been
	# booted with systemd"); the guest is one, apart from PID 1.
	mkdir -p "$logs" /run/dbus /run/systemd/system || die "mkdir $logs /run/dbus /run/systemd/system"
	login_fail() {
		local f
		for f in "$logs"/*.log; do
			[[ -s $f ]] || continue
			echo "---- ${f#"$JOB"/} (last lines) ----"
			tail -n 20 "$f"
		done >/dev/console 2>&1
		die "$* (see login/ in the job dir: BURROW_VM_KEEP=1)"
	}
	# One deadline for the whole login; systemd's own default is 90 s.
	deadline=$((${EPOCHREALTIME/./} + 60000000))
	# The helpers report readiness with a line on fd 8, a fifo: read with a
	# timeout, without forking, and without blocking on an open() should a
	# helper die before it opens its end.
	mkfifo /run/burrow-vm/login-ready || die "mkfifo"
	exec 8<>/run/burrow-vm/login-ready
	await_line() { # await_line PID WHAT: the next line on fd 8 into REPLY
		local line= part=
		while ((${EPOCHREALTIME/./} < deadline)); do
			# A read that times out mid-line keeps what it got in part (the
			# fifo is read a byte at a time): carry it over, or a slow guest
			# turns "ready" into "eady".
			if read -r -t 0.2 -u 8 part; then
				REPLY=$line$part
				return 0
			fi
			line+=$part
			kill -0 "$1" 2>/dev/null || login_fail "$2 exited"
		done
		login_fail "$2 was not ready after 60 s"
	}
	# Each in its own cgroup under system.slice, as systemd runs them, moved
	# there by the subshell while it is still root.
	mkdir -p "$cg/system.slice/dbus.service" "$cg/system.slice/burrow-vm-systemd1.service" ||
		die "mkdir $cg/system.slice"

	# The system bus: systemd --user connects to it once, when it starts.
	# dbus-daemon drops to the messagebus user itself.
	(
		echo 0 >"$cg/system.slice/dbus.service/cgroup.procs" || exit 125
		exec dbus-daemon --system --nofork --nopidfile --print-address=8
	) </dev/null >"$logs/system-bus.log" 2>&1 &
	await_line "$!" "the system bus (dbus-daemon --system)"

	# PID 1's AttachProcessesToUnit (see systemd1-stub.py): prints "ready"
	# once it owns org.freedesktop.systemd1. Starts while the user's manager
	# does; both have to be up before the command runs.
	(
		echo 0 >"$cg/system.slice/burrow-vm-systemd1.service/cgroup.procs" || exit 125
		exec /usr/bin/python3 -IS "$HOSTROOT$HERE/systemd1-stub.py"
	) </dev/null >&8 2>"$logs/systemd1-stub.log" &
	stub=$!

	# The user manager's generators (xdg-autostart units, environment.d,
	# gpg-agent's SSH_AUTH_SOCK) find nothing to do in a test but take 1.1 s
	# of its 2.1 s startup under TCG: hide them.
	mkdir -p /run/burrow-vm/empty
	for d in /usr/lib/systemd/user-generators /usr/lib/systemd/user-environment-generators; do
		if [[ -d $d ]]; then mount --bind /run/burrow-vm/empty "$d" || die "hide $d"; fi
	done

	# The user's manager, as user@UID.service starts it: in that cgroup (it
	# moves itself into init.scope), as the user, with what PAM would give
	# it. HOME is the command's writable HOME (the real one is read-only).
	# Its user bus is the socket-activated dbus-daemon of dbus-user-session's
	# dbus.socket. Logging to the console target is plain stderr here.
	manager_envs=("PATH=$PATH" "HOME=$scratch/home" "USER=$user" "LOGNAME=$user" "SHELL=/bin/sh"
		"LANG=C.UTF-8" "XDG_RUNTIME_DIR=/run/user/$uid")
	(
		echo 0 >"$delegated/cgroup.procs" || exit 125
		cd "$scratch/home" || exit 125
		while read -r var; do unset "$var"; done < <(compgen -e)
		export "${manager_envs[@]}"
		exec setpriv --reuid="$uid" --regid="$gid" --init-groups -- \
			/usr/lib/systemd/systemd --user --log-target=console
	) </dev/null 8>&- >"$logs/systemd-user.log" 2>&1 &
	manager=$!

	await_line "$stub" "the stand-in for PID 1 on the system bus (systemd1-stub.py)"
	[[ $REPLY == ready ]] || login_fail "systemd1-stub.py said '$REPLY', not ready"
	exec 8>&-
	until [[ -S $user_bus ]]; do
		((${EPOCHREALTIME/./} < deadline)) || login_fail "no user bus $user_bus after 60 s"
		kill -0 "$manager" 2>/dev/null || login_fail "systemd --user exited"
		sleep 0.05
	done
	# The first client on the bus starts dbus-daemon, which holds calls to
	# org.freedesktop.systemd1 until the manager has joined: one call, as the
	# user, proves both.
	state=$(
		export XDG_RUNTIME_DIR="/run/user/$uid" DBUS_SESSION_BUS_ADDRESS="unix:path=$user_bus"
		exec setpriv --reuid="$uid" --regid="$gid" --init-groups -- \
			busctl --user --timeout=$(((deadline - ${EPOCHREALTIME/./}) / 1000000 + 1)) \
			get-property org.freedesktop.systemd1 /org/freedesktop/systemd1 \
			org.freedesktop.systemd1.Manager SystemState 2>>"$logs/systemd-user.log"
	) || login_fail "systemd --user does not answer on the user bus $user_bus"
	echo "burrow-vm: SystemState ${state#s } when the command starts" >>"$logs/systemd-user.log"
	login_envs=(
		"DBUS_SESSION_BUS_ADDRESS=unix:path=$user_bus"
		"BURROW_VM_LOGIN=systemd"
	)
fi

# --- 5. the command ----------------------------------------------------------
cwd=$BURROW_VM_CWD
[[ -d "$cwd" ]] || cwd=/
envs=(
	"PATH=$PATH"
	"HOME=$scratch/home"
	"USER=$user"
	"LOGNAME=$user"
	"SHELL=/bin/sh"
	"LANG=C.UTF-8"
	"TERM=dumb"
	"XDG_RUNTIME_DIR=/run/user/$uid"
	"BURROW_VM=1"
	"BURROW_VM_SCRATCH=$scratch"
	"BURROW_VM_CGROUP=$delegated"
	"BURROW_VM_CGROUP_LEAF=$leaf"
	"BURROW_VM_CONTROLLERS=$controllers"
	"BURROW_VM_HOSTROOT=$HOSTROOT"
	"BURROW_VM_USER_HOME=$home"
	"BURROW_VM_OUT=$JOB/out"
	"${login_envs[@]}"
	"${BURROW_VM_ENVS[@]}"
)
mkdir -p "$JOB/out" && chown "$uid:$gid" "$JOB/out"

read -r up _ </proc/uptime
echo "$up" >"$JOB/started"
(
	# Into the leaf while still root (writing 0 moves the writer itself),
	# then become the user in place: no root parent is left in the subtree.
	echo 0 >"$leaf/cgroup.procs" || exit 125
	cd "$cwd" || exit 125
	# A clean environment: only what envs says (env -i without its exec).
	while read -r var; do unset "$var"; done < <(compgen -e)
	export "${envs[@]}"
	exec setpriv --reuid="$uid" --regid="$gid" --init-groups -- "${BURROW_VM_CMD[@]}"
) </dev/null >"$JOB/stdout" 2>"$JOB/stderr" &
wait "$!"
rc=$?
read -r up _ </proc/uptime
echo "$up" >"$JOB/finished"
echo "$rc" >"$JOB/rc"

# --- 6. done -----------------------------------------------------------------
power_off
