#!/usr/bin/env bash
# Builds a minimal busybox root filesystem as a tarball ready for
# `burrow import`, from Debian's busybox-static package (/bin/busybox).
#
# The tree: busybox in /bin and a relative symlink for every applet at the
# place `busybox --install` would put it (/bin/sh, /bin/true, /usr/bin/env,
# /sbin/ifconfig...), /etc/passwd and /etc/group (root, nobody), /tmp (1777),
# /root (0700), and empty /proc, /dev, /sys and /run for the runtime to mount
# on. No root needed: the tree is made in a temp dir and archived with owner
# and group 0, so files are root's inside the image whoever built it. The
# archive is reproducible: names sorted, every mtime set to SOURCE_DATE_EPOCH
# (default 0).
#
# FORMAT picks the compression (to test burrow's detection): tar, gz or zst;
# by default it follows OUT's suffix (.tar.gz/.tgz, .tar.zst/.tzst, else tar).
#
# Prints on stdout the `burrow import` line that gives the image a useful
# Cmd and PATH; progress goes to stderr.
set -euo pipefail

usage() {
	echo "usage: $0 OUT.tar [tar|gz|zst]" >&2
	exit 2
}

[[ $# -ge 1 && $# -le 2 && $1 != -* ]] || usage
out=$1
format=${2:-}
if [[ -z $format ]]; then
	case $out in
	*.tar.gz | *.tgz) format=gz ;;
	*.tar.zst | *.tzst) format=zst ;;
	*) format=tar ;;
	esac
fi
case $format in
tar) compress=() ;;
gz) compress=(gzip -n -9) ;;
zst) compress=(zstd -q -19) ;;
*) usage ;;
esac
if [[ ${#compress[@]} -gt 0 ]] && ! command -v "${compress[0]}" >/dev/null; then
	echo "$0: ${compress[0]} not found; install it: apt-get install -y ${compress[0]}" >&2
	exit 1
fi

busybox=/bin/busybox
# Debian's busybox-static is linked statically; a dynamic busybox would need
# its libraries in the image too.
if [[ ! -x $busybox ]] || ! "$busybox" --list-full >/dev/null 2>&1 ||
	! { LC_ALL=C file -L "$busybox" 2>/dev/null || echo static; } | grep -q static; then
	echo "$0: a static $busybox is needed; install it: apt-get install -y busybox-static" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/busybox-rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
umask 022

mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,proc,dev,sys,run}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
install -m 0755 "$busybox" "$root/bin/busybox"

# One symlink per applet, where `busybox --install` would put it; the link
# is relative so it also resolves when the tree is looked at from outside.
count=0
while IFS= read -r applet; do
	case $applet in
	*/*) ;;
	*) continue ;; # linuxrc and the like: only for an initramfs
	esac
	dir=${applet%/*}
	[[ -e $root/$applet || -L $root/$applet ]] && continue
	mkdir -p "$root/$dir"
	case $dir in
	bin) target=busybox ;;
	*/*) target=../../bin/busybox ;; # usr/bin, usr/sbin
	*) target=../bin/busybox ;;      # sbin
	esac
	ln -s "$target" "$root/$applet"
	count=$((count + 1))
done < <("$busybox" --list-full | sort)

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
chmod 0644 "$root/etc/passwd" "$root/etc/group"

tmp_out=$out.part.$$
trap 'rm -rf "$work"; rm -f "$tmp_out"' EXIT
tar_args=(--sort=name --mtime="@${SOURCE_DATE_EPOCH:-0}" --numeric-owner --owner=0 --group=0 -C "$root")
if [[ $format == tar ]]; then
	tar "${tar_args[@]}" -cf "$tmp_out" .
else
	tar "${tar_args[@]}" -cf - . | "${compress[@]}" >"$tmp_out"
fi
mv -f "$tmp_out" "$out"

echo "$0: wrote $out ($format, $(du -h "$out" | cut -f1), busybox $("$busybox" | head -1 | awk '{print $2}'), $count applets)" >&2
echo "burrow import $out busybox --change 'CMD [\"sh\"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'"
