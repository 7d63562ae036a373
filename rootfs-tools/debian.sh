#!/usr/bin/env bash
# Builds a Debian "minbase" root filesystem (essential packages + apt, about
# 90 packages) as a tarball ready for `burrow import`, with mmdebstrap.
#
# mmdebstrap writes the tarball directly. --mode=auto picks how: as root it
# uses root mode; as an ordinary user it uses unshare mode, which needs a
# subordinate id range for the user in /etc/subuid and /etc/subgid (see
# newuidmap(1)), falling back to fakechroot or proot if those are installed.
#
# The device nodes mmdebstrap puts in /dev are filtered out (mmtarfilter):
# the runtime gives each container its own /dev, and an unprivileged user
# could not create them on import anyway. Docker's debian images have none
# either. The archive's compression follows OUT's suffix: .tar, .tar.gz or
# .tgz, .tar.zst or .tzst.
#
# Packages come from MIRROR (default http://deb.debian.org/debian); SUITE
# defaults to bookworm. Prints on stdout the `burrow import` line that gives
# the image a useful Cmd; mmdebstrap's progress goes to stderr.
set -euo pipefail

usage() {
	echo "usage: $0 OUT.tar [SUITE]   (env MIRROR=URL overrides deb.debian.org)" >&2
	exit 2
}

[[ $# -ge 1 && $# -le 2 && $1 != -* ]] || usage
out=$1
suite=${2:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}

if ! command -v mmdebstrap >/dev/null; then
	echo "$0: mmdebstrap not found; install it: apt-get install -y mmdebstrap" >&2
	exit 1
fi

case $out in
*.tar.gz | *.tgz) compress=(gzip -n) ;;
*.tar.zst | *.tzst) compress=(zstd -q -T0) ;;
*) compress=(cat) ;;
esac

# Write next to OUT and rename, so a failed run leaves no half tarball.
tmp_out=$out.part.$$
trap 'rm -f "$tmp_out"' EXIT

start=$SECONDS
# "-" as the target makes mmdebstrap write an uncompressed tar to stdout.
mmdebstrap --variant=minbase --mode=auto "$suite" - "$mirror" |
	mmtarfilter --path-exclude='/dev/*' |
	"${compress[@]}" >"$tmp_out"
mv -f "$tmp_out" "$out"

echo "$0: wrote $out (debian $suite minbase, $(du -h "$out" | cut -f1), $((SECONDS - start)) s)" >&2
echo "burrow import $out debian:$suite --change 'CMD [\"bash\"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'"
