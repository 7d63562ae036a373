#!/usr/bin/env bash
# Builds the seeds' colour app as a tarball ready for `burrow import`: the
# busybox rootfs of busybox.sh plus /app/serve, a shell script that writes a
# page whose background is $COLOR (white when unset) and serves it with
# busybox httpd on port 3000.
#
# Prints on stdout the `burrow import` line that exposes the port and sets
# the command; progress goes to stderr.
set -euo pipefail

[[ $# -eq 1 && $1 != -* ]] || {
	echo "usage: $0 OUT.tar" >&2
	exit 2
}
out=$1
here=$(cd "$(dirname "$0")" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/colour-rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
bash "$here/busybox.sh" "$work/base.tar" tar >/dev/null

mkdir -p "$work/tree/app"
cat >"$work/tree/app/serve" <<'EOF'
#!/bin/sh
# The colour app: a page in the colour $COLOR names, on port 3000.
color=${COLOR:-white}
# Only a colour name or #rgb code reaches the page.
case $color in
*[!A-Za-z0-9#]*) color=white ;;
esac
mkdir -p /tmp/www
cat >/tmp/www/index.html <<PAGE
<!DOCTYPE html>
<html><head><title>colour</title></head>
<body style="background-color: $color"><h1>Hello from $(hostname): my colour is $color</h1></body></html>
PAGE
exec httpd -f -p 3000 -h /tmp/www
EOF
chmod 0755 "$work/tree/app/serve"
cp "$work/base.tar" "$work/out.tar"
tar --append -f "$work/out.tar" --numeric-owner --owner=0 --group=0 \
	--mtime="@${SOURCE_DATE_EPOCH:-0}" -C "$work/tree" ./app ./app/serve
mv -f "$work/out.tar" "$out"
echo "$0: wrote $out" >&2
echo "burrow import $out colour --change 'EXPOSE 3000' --change 'CMD [\"/app/serve\"]'"
