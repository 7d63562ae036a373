#!/usr/bin/env bash
# Runs one command inside a throwaway qemu VM (software emulation, TCG) that is
# a real cgroup v2 host, as an unprivileged user who owns a delegated cgroup
# subtree -- what the tests of cgroup limits need, and what this hybrid
# v1/v2 host (and CI) cannot give them.
#
#   tests/vm/run.sh [options] -- CMD [ARGS...]
#     --timeout SECS   kill the VM after SECS (default 300); exit 125
#     --env K=V        add to the command's environment (repeatable)
#     --user NAME      run as NAME (default burrow-it; created as root if
#                      missing, with subuid/subgid range 400000:65536)
#     --cwd DIR        working directory in the guest (default: $PWD)
#     --share PATH     make the host PATH visible (read-only) at the same path
#                      although it is under /tmp, /var/tmp or /run, which the
#                      guest covers with its own (repeatable; the working dir
#                      and an absolute CMD are shared without asking)
#     --out DIR        copy what the command wrote to $BURROW_VM_OUT into DIR
#     --mem MB         guest memory (default 2048)
#     --scratch-size S size of the guest's ext4 /tmp (sparse; default 8G)
#     --verbose        report boot and run times on stderr
#     --login systemd  run CMD in a login session of a systemd host:
#                      user.slice/user-UID.slice/session-1.scope, next to
#                      the user's own systemd --user (in user@UID.service,
#                      the delegated cgroup) and its D-Bus user bus
#                      (DBUS_SESSION_BUS_ADDRESS), for transient scopes with
#                      Delegate=yes as podman asks for them
#
# The guest shares the host's root read-only over 9p (same /etc/passwd,
# /etc/subuid, binaries, /lib/modules), boots Debian's linux-image-amd64
# through a small cached busybox initramfs (tests/vm/initramfs-init.sh) and
# runs tests/vm/guest-init.sh as PID 1. The command's stdout, stderr and exit
# code come back through a second, writable 9p share. Exit status: the
# command's, or 125 when the VM could not boot or run it in time.
# See tests/vm/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
me="tests/vm/run.sh"

timeout=300
user=burrow-it
cwd=$PWD
mem=2048
scratch_size=8G
verbose=${BURROW_VM_VERBOSE:-0}
out_dir=
login=
envs=()
shares=()

usage() {
	sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0" >&2
	exit 125
}
fail() { # boot/setup failure: 125, like docker's "the runtime failed"
	echo "$me: $*" >&2
	exit 125
}

while (($#)); do
	case "$1" in
	--timeout) timeout=${2:?}; shift 2 ;;
	--env) [[ ${2:?} == *=* ]] || fail "--env wants K=V, got '$2'"; envs+=("$2"); shift 2 ;;
	--user) user=${2:?}; shift 2 ;;
	--cwd) cwd=${2:?}; shift 2 ;;
	--share) shares+=("$(realpath -m "${2:?}")"); shift 2 ;;
	--out) out_dir=${2:?}; shift 2 ;;
	--mem) mem=${2:?}; shift 2 ;;
	--scratch-size) scratch_size=${2:?}; shift 2 ;;
	--verbose) verbose=1; shift ;;
	--login)
		case "${2:?}" in
		systemd) login=$2 ;;
		*) fail "--login wants systemd, got '$2'" ;;
		esac
		shift 2
		;;
	--) shift; break ;;
	-h | --help) usage ;;
	*) echo "$me: unknown option '$1'" >&2; usage ;;
	esac
done
(($#)) || usage
[[ $timeout =~ ^[0-9]+$ ]] || fail "--timeout wants seconds, got '$timeout'"

say() { if [[ $verbose == 1 ]]; then echo "$me: $*" >&2; fi; }

# --- packages ----------------------------------------------------------------
packages=(qemu-system-x86 linux-image-amd64 busybox-static uidmap)
# --login systemd: the user manager, busctl and systemd-run (systemd), the
# socket-activated user bus (dbus-user-session's dbus.socket and dbus-daemon),
# the system bus the manager also connects to (dbus-system-bus-common: its
# config and the messagebus user) and the stand-in for PID 1 on it (python3,
# standard library only).
if [[ $login == systemd ]]; then
	packages+=(systemd dbus-daemon dbus-user-session dbus-system-bus-common python3)
fi
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	[[ $(id -u) -eq 0 ]] || fail "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
		apt-get update -qq >/dev/null
		apt-get install -y -qq "${missing[@]}" >/dev/null
	} || fail "apt-get install ${missing[*]} failed"
fi

# --- the test user -------------------------------------------------------------
if ! id "$user" >/dev/null 2>&1; then
	[[ $(id -u) -eq 0 ]] || fail "no user $user (run as root to create it)"
	# Same lock and same useradd as the Rust integration tests (tests/common).
	exec 9>/tmp/.burrow-it-users.lock
	flock 9
	id "$user" >/dev/null 2>&1 ||
		useradd --system --shell /usr/sbin/nologin --no-create-home "$user" ||
		fail "useradd $user failed"
	exec 9>&-
fi
# The range the integration tests give burrow-it (other users keep theirs,
# or their lack of one).
if [[ $(id -u) -eq 0 && $user == burrow-it ]]; then
	exec 9>/tmp/.burrow-it-users.lock
	flock 9
	for f in /etc/subuid /etc/subgid; do
		grep -q "^$user:" "$f" 2>/dev/null || echo "$user:400000:65536" >>"$f"
	done
	exec 9>&-
fi

# --- kernel --------------------------------------------------------------------
# The newest /boot/vmlinuz-* whose modules are installed (the installed
# linux-image-amd64 need not be the running kernel).
kver=
while read -r k; do
	v=${k#/boot/vmlinuz-}
	if [[ -d /lib/modules/$v ]]; then kver=$v; fi
done < <(find /boot -maxdepth 1 -name 'vmlinuz-*' | sort -V)
[[ -n $kver ]] || fail "no /boot/vmlinuz-* with a matching /lib/modules dir (apt-get install linux-image-amd64)"
kernel=/boot/vmlinuz-$kver
moddir=/lib/modules/$kver

if [[ $(id -u) -eq 0 ]]; then
	cache=${XDG_CACHE_HOME:-/tmp}/burrow-vm
else
	cache=${XDG_CACHE_HOME:-/tmp/burrow-vm-$(id -u)}/burrow-vm
fi
mkdir -p "$cache"

# Under TCG the kernel's own decompressor takes seconds: boot the
# uncompressed ELF vmlinux through its PVH entry point instead (qemu loads an
# ELF kernel with a PVH note directly; Debian's kernels have CONFIG_PVH).
# Extracted once per kernel; on any doubt keep the bzImage.
extract_vmlinux() {
	local magic off tool
	for magic in $'\xfd7zXZ\x00':"xz -dc --single-stream" $'\x28\xb5\x2f\xfd':"zstd -qdc" \
		$'\x1f\x8b\x08':"gzip -dc"; do
		tool=${magic#*:}
		off=$(LC_ALL=C grep -Fabo -m1 "${magic%%:*}" "$kernel" | head -n1 | cut -d: -f1) || continue
		[[ -n $off ]] || continue
		# shellcheck disable=SC2086 # $tool is a command with options
		tail -c +"$((off + 1))" "$kernel" | $tool 2>/dev/null >"$1.tmp.$$" || true
		if [[ $(head -c4 "$1.tmp.$$" 2>/dev/null) == $'\x7fELF' ]] &&
			readelf -n "$1.tmp.$$" 2>/dev/null | grep -q 'Xen.*0x00000012'; then
			mv "$1.tmp.$$" "$1"
			return 0
		fi
		rm -f "$1.tmp.$$"
	done
	return 1
}
if [[ ${BURROW_VM_PVH:-1} == 1 ]]; then
	vmlinux=$cache/vmlinux-$kver
	if [[ -s $vmlinux ]] || { [[ -r $kernel ]] && say "extracting $vmlinux" && extract_vmlinux "$vmlinux"; }; then
		kernel=$vmlinux
	else
		say "no PVH-bootable vmlinux in $kernel; booting it compressed"
	fi
fi

[[ -r $kernel ]] || fail "$kernel is not readable (run as root)"

# --- initramfs (cached per kernel and init script) -------------------------------
key=$(cat "$here/initramfs-init.sh" "$0" | sha256sum | cut -c1-12)
initrd=$cache/initramfs-$kver-$key.cpio

# Print the paths of modules $@ and their dependencies, dependencies first,
# from modules.dep (modules built into the kernel are not in it: skipped).
modules_in_order() {
	declare -A deps=() seen=()
	local line mod
	while IFS= read -r line; do
		deps[${line%%:*}]=${line#*:}
	done <"$moddir/modules.dep"
	visit() {
		local path=$1 d
		[[ -n ${seen[$path]:-} ]] && return
		seen[$path]=1
		for d in ${deps[$path]:-}; do visit "$d"; done
		echo "$path"
	}
	for mod in "$@"; do
		for path in "${!deps[@]}"; do
			if [[ $path =~ (^|/)${mod}\.ko(\.xz|\.zst|\.gz)?$ ]]; then visit "$path"; fi
		done
	done
}

# The 9p root over virtio; then, loaded the same way because insmod from the
# initramfs is fast: virtio_blk and ext4 for the scratch disk, tun (pasta,
# slirp4netns), overlay and fuse (fuse-overlayfs) for the tests.
initrd_modules=(virtio_pci virtio_ring virtio 9pnet 9pnet_virtio netfs fscache 9p
	virtio_blk ext4 tun overlay fuse)
build_initrd() {
	local root busybox ko name
	busybox=$(command -v busybox) || fail "busybox not found (apt-get install busybox-static)"
	root=$(mktemp -d)
	mkdir -p "$root"/{bin,lib/modules,proc,sys,dev,newroot}
	cp "$busybox" "$root/bin/busybox"
	for a in sh mount umount mkdir cat insmod switch_root poweroff; do ln -s busybox "$root/bin/$a"; done
	cp "$here/initramfs-init.sh" "$root/init"
	chmod 755 "$root/init"
	: >"$root/modules.order"
	while read -r ko; do
		name=$(basename "$ko")
		# busybox's insmod may lack compressed-module support: decompress here.
		case "$name" in
		*.ko.xz) xz -dc "$moddir/$ko" >"$root/lib/modules/${name%.xz}"; name=${name%.xz} ;;
		*.ko.zst) zstd -qdc "$moddir/$ko" >"$root/lib/modules/${name%.zst}"; name=${name%.zst} ;;
		*.ko.gz) gzip -dc "$moddir/$ko" >"$root/lib/modules/${name%.gz}"; name=${name%.gz} ;;
		*) cp "$moddir/$ko" "$root/lib/modules/$name" ;;
		esac
		echo "$name" >>"$root/modules.order"
	done < <(modules_in_order "${initrd_modules[@]}")
	grep -q '^9p\.ko$' "$root/modules.order" || grep -q '/9p\.ko' "$moddir/modules.builtin" ||
		fail "kernel $kver has no 9p module"
	(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null) >"$initrd.tmp.$$"
	mv "$initrd.tmp.$$" "$initrd"
	rm -rf "$root"
}
if [[ ! -s $initrd ]]; then
	say "building $initrd"
	rm -f "$cache/initramfs-$kver-"*.cpio
	build_initrd
fi

# --- the job -----------------------------------------------------------------------
# In a host temp dir shared writable with the guest (tag burrowjob).
job=$(mktemp -d "${TMPDIR:-/tmp}/burrow-vm-job.XXXXXX")
qemu_pid=
# shellcheck disable=SC2317 # called from the trap
cleanup() {
	if [[ -n $qemu_pid ]]; then kill "$qemu_pid" 2>/dev/null || true; fi
	if [[ ${BURROW_VM_KEEP:-0} == 1 ]]; then
		echo "$me: kept the job dir $job" >&2
	else
		rm -rf "$job"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# The test user must reach out/ (BURROW_VM_OUT) but need not list the rest.
chmod 711 "$job"
mkdir -m 1777 "$job/out"
# The guest's /tmp: a sparse ext4 image. tmpfs in this kernel (6.1) has no
# user.* xattrs, so overlayfs with userxattr in a user namespace fails there
# (EIO on rmdir of a lower directory); ext4 has them, like the host's /tmp.
# No journal: the disk is thrown away with the job.
truncate -s "$scratch_size" "$job/scratch.img"
mkfs.ext4 -q -F -O ^has_journal -E lazy_itable_init=1,root_owner=0:0 "$job/scratch.img" ||
	fail "mkfs.ext4 of the scratch disk failed"

# The working dir and the command itself are shared without being asked.
cwd=$(realpath -m "$cwd")
for p in "$cwd" "$(if [[ $1 == /* ]]; then realpath -m "$1"; fi)"; do
	for top in /tmp /var/tmp /run; do
		if [[ $p == "$top"/* ]]; then shares+=("$p"); fi
	done
done
BURROW_VM_USER=$user
BURROW_VM_UID=$(id -u "$user")
BURROW_VM_GID=$(id -g "$user")
BURROW_VM_HOME=$(getent passwd "$user" | cut -d: -f6)
BURROW_VM_CWD=$cwd
BURROW_VM_SHARES=("${shares[@]}")
BURROW_VM_ENVS=("${envs[@]}")
BURROW_VM_CMD=("$@")
BURROW_VM_LOGIN=$login
declare -p BURROW_VM_USER BURROW_VM_UID BURROW_VM_GID BURROW_VM_HOME BURROW_VM_CWD BURROW_VM_LOGIN \
	BURROW_VM_SHARES BURROW_VM_ENVS BURROW_VM_CMD >"$job/job.env"

# --- boot ------------------------------------------------------------------------
cmdline="console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init burrow.init=$here/guest-init.sh ${BURROW_VM_APPEND:-}"
# TCG by default. BURROW_VM_ACCEL=kvm is for hosts where KVM works (it does
# not here: /dev/kvm exists, but KVM fails on the CPU's MSRs).
accel=${BURROW_VM_ACCEL:-tcg,thread=multi}
cpu=max
if [[ $accel == kvm* ]]; then cpu=host; fi
start=$(date +%s.%N)
qemu-system-x86_64 \
	-accel "$accel" -cpu "$cpu" -m "$mem" -smp 2 \
	-nographic -no-reboot -vga none -nic none \
	-kernel "$kernel" -initrd "$initrd" -append "$cmdline" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	-virtfs "local,path=$job,mount_tag=burrowjob,security_model=none,multidevs=remap" \
	-drive "file=$job/scratch.img,format=raw,if=virtio,cache=unsafe,discard=unmap" \
	</dev/null >"$job/serial.log" 2>&1 &
qemu_pid=$!

timed_out=0
deadline=$((${EPOCHREALTIME/./} + timeout * 1000000)) # microseconds
while kill -0 "$qemu_pid" 2>/dev/null; do
	if ((${EPOCHREALTIME/./} >= deadline)); then
		timed_out=1
		kill "$qemu_pid" 2>/dev/null || true
		sleep 2
		kill -KILL "$qemu_pid" 2>/dev/null || true
		break
	fi
	sleep 0.2
done
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=
end=$(date +%s.%N)

# --- results ---------------------------------------------------------------------------
[[ -f $job/stdout ]] && cat "$job/stdout"
[[ -f $job/stderr ]] && cat "$job/stderr" >&2
if [[ -n $out_dir ]]; then
	mkdir -p "$out_dir"
	find "$job/out" -mindepth 1 -maxdepth 1 -exec cp -a {} "$out_dir/" \;
fi

serial_tail() { # without the firmware's terminal escapes
	echo "---- last lines of the guest's serial console ----" >&2
	sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' "$job/serial.log" | tail -n 40 >&2
	echo "---- end of serial console ----" >&2
}
if ((timed_out)); then
	serial_tail
	fail "timed out after ${timeout}s ($(if [[ -f $job/started ]]; then echo "the command was running"; else echo "the guest never started the command"; fi))"
fi
if [[ ! -f $job/rc ]]; then
	serial_tail
	if [[ -f $job/boot-error ]]; then
		fail "the guest failed to set up: $(cat "$job/boot-error")"
	fi
	why=$(grep -a -o 'burrow-vm: .*' "$job/serial.log" | tail -n 1 || true)
	if [[ -n $why ]]; then fail "the guest failed to boot: ${why#burrow-vm: }"; fi
	fail "the VM stopped without running the command to its end (boot failure?)"
fi
rc=$(cat "$job/rc")
if [[ $verbose == 1 ]]; then
	started_at=$(stat -c %.9Y "$job/started")
	finished_at=$(stat -c %.9Y "$job/rc")
	say "$(awk -v s="$start" -v b="$started_at" -v f="$finished_at" -v e="$end" -v u="$(cat "$job/started")" \
		'BEGIN { printf "boot to command start %.1fs (guest uptime %.1fs), command %.1fs, power-off %.1fs, total %.1fs", b-s, u, f-b, e-f, e-s }')"
fi
exit "$rc"
