#!/usr/bin/env bash
# Builds a Debian "minbase" root filesystem (essential packages + apt, about
# 90 packages) as a tarball ready for `burrow import`, with mmdebstrap.
#
# mmdebstrap writes the tarball directly. --mode=auto picks how: as root it
# uses root mode; as an ordinary user it uses unshare mode, which needs a
# subordinate id range for the user in /etc/subuid and /etc/subgid (see
# newuidmap(1)), falling back to fakechroot or proot if those are installed.
# The archive's compression follows OUT's suffix (.tar, .tar.gz, .tar.zst...).
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

# Write next to OUT and rename, so a failed run leaves no half tarball; keep
# OUT's suffix, from which mmdebstrap picks the compression.
dir=$(dirname -- "$out")
base=$(basename -- "$out")
tmp_out=$dir/.part.$$.$base
trap 'rm -f "$tmp_out"' EXIT

start=$SECONDS
mmdebstrap --variant=minbase --mode=auto "$suite" "$tmp_out" "$mirror" >&2
mv -f "$tmp_out" "$out"

echo "$0: wrote $out (debian $suite minbase, $(du -h "$out" | cut -f1), $((SECONDS - start)) s)" >&2
echo "burrow import $out debian:$suite --change 'CMD [\"bash\"]'"
