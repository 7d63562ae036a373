#!/bin/busybox sh
# shellcheck shell=sh
# /init of the tiny initramfs that tests/vm/run.sh builds (busybox-static plus
# the modules for a 9p root over virtio). It mounts the host's root, shared
# read-only by qemu under the tag "hostroot", and switch_roots into it,
# running the second stage (tests/vm/guest-init.sh, named by burrow.init= on
# the kernel command line) from the shared root.
#
# switch_root, not chroot: a process inside chroot(2) cannot create a user
# namespace (EPERM, see user_namespaces(7)), and the tests need exactly that.
set -u
PATH=/bin
export PATH

fail() {
	echo "burrow-vm: initramfs: $*" >/dev/console
	# run.sh sees no exit code and reports a boot failure. Should power-off
	# fail, the exit panics, panic=-1 reboots and qemu's -no-reboot exits.
	poweroff -f
	exit 1
}

mkdir -p /proc /sys /dev /newroot
mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sysfs /sys || fail "mount /sys"
mount -t devtmpfs devtmpfs /dev 2>/dev/null || true

# Read the command line now: /proc is unmounted before switch_root.
stage2=
msize=262144
read -r cmdline </proc/cmdline
for arg in $cmdline; do
	case "$arg" in
	burrow.init=*) stage2=${arg#burrow.init=} ;;
	burrow.msize=*) msize=${arg#burrow.msize=} ;;
	esac
done
[ -n "$stage2" ] || fail "no burrow.init= on the kernel command line"

# Modules in dependency order (run.sh wrote the list); a module that is
# already loaded or built in makes insmod fail harmlessly.
while read -r ko; do
	insmod "/lib/modules/$ko" 2>/dev/null || true
done </modules.order

mount -t 9p -o ro,trans=virtio,version=9p2000.L,cache=loose,msize="$msize" \
	hostroot /newroot || fail "mount the 9p root (tag hostroot)"
[ -r "/newroot$stage2" ] || fail "second stage $stage2 not found on the shared root"

umount /proc /sys
# Keep the console open across switch_root: move /dev instead of unmounting.
mount --move /dev /newroot/dev 2>/dev/null || true
exec switch_root /newroot /bin/bash "$stage2"
