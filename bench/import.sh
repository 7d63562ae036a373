#!/usr/bin/env bash
# Import speed, side by side: `burrow import` of a rootfs tarball of about
# SIZE_MB (200) uncompressed, against unpacking the same file with GNU tar
# into a fresh directory, rootless, as the unprivileged user burrow-bench:
#   - gzip: `burrow import F.tar.gz` vs `tar -xzf F.tar.gz -C DIR`;
#   - zstd: `burrow import F.tar.zst` vs `zstd -dc F.tar.zst | tar -x -C DIR`;
# one hyperfine run per format. Before each run the image is removed
# (`burrow rmi`, which also drops its now unused layer) or the directory
# emptied, untimed.
#
# The tarball: the busybox rootfs plus real files from the host's /usr/lib
# (many small files and some large ones), gzip -6 and zstd -3 (each tool's
# default level). Run as root (as on the project's machines) or as an
# ordinary user. Results (JSON, import.md) go to OUT_DIR (default
# target/bench/import-<date-time>).
#
# Environment: RUNS (10), WARMUP (2), SIZE_MB (200), QUICK=1 (RUNS=3
# WARMUP=1 SIZE_MB=20 unless set), KEEP, OUT_DIR, BURROW_BIN,
# CARGO_TARGET_DIR.
set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
out_dir=${OUT_DIR:-$target_dir/bench/import-$(date +%Y%m%d-%H%M%S)}

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
runs=$(knob RUNS 10 3)
warmup=$(knob WARMUP 2 1)
size_mb=$(knob SIZE_MB 200 20)

need_packages hyperfine:hyperfine newuidmap:uidmap /bin/busybox:busybox-static zstd:zstd
burrow_release
run_user=$(bench_user)
bench_work importbench
mkdir -p "$out_dir"

say "building a ${size_mb} MB tarball"
mkdir "$work/tree"
tar -xf "$work/busybox.tar" -C "$work/tree"
usr_lib_files "$size_mb" >"$work/files"
tar -C / -cf - -T "$work/files" | tar -xf - -C "$work/tree"
tar --numeric-owner --owner=0 --group=0 -cf "$work/rootfs.tar" -C "$work/tree" .
rm -rf "$work/tree"
gzip -6 -c "$work/rootfs.tar" >"$work/rootfs.tar.gz"
zstd -q -3 -c "$work/rootfs.tar" >"$work/rootfs.tar.zst"
chmod a+r "$work"/rootfs.tar*
bytes=$(stat -c %s "$work/rootfs.tar")
nfiles=$(tar -tf "$work/rootfs.tar" | wc -l)
gz_bytes=$(stat -c %s "$work/rootfs.tar.gz")
zst_bytes=$(stat -c %s "$work/rootfs.tar.zst")
rm "$work/rootfs.tar"

cat >"$work/bin/rmi-imported" <<'SH'
#!/bin/sh
burrow rmi imported >/dev/null 2>&1 || true
SH
cat >"$work/bin/fresh-dir" <<'SH'
#!/bin/sh
rm -rf "$1" && mkdir "$1"
SH
cat >"$work/bin/zstd-tar" <<'SH'
#!/bin/sh
set -e
zstd -q -dc "$1" | tar -x -C "$2"
SH
chmod 0755 "$work/bin/rmi-imported" "$work/bin/fresh-dir" "$work/bin/zstd-tar"
dir=$work/home/unpacked

# Each command must work before it is timed.
as_user burrow import "$work/rootfs.tar.gz" imported >/dev/null
as_user rmi-imported
as_user burrow import "$work/rootfs.tar.zst" imported >/dev/null
as_user rmi-imported
as_user fresh-dir "$dir"
as_user tar -xzf "$work/rootfs.tar.gz" -C "$dir"
as_user fresh-dir "$dir"
as_user zstd-tar "$work/rootfs.tar.zst" "$dir"

hf=(--shell=none --style basic --runs "$runs" --warmup "$warmup")
say "gzip ($((gz_bytes / 1000000)) MB), $runs runs each, as $run_user"
as_user hyperfine "${hf[@]}" --export-json "$work/results/import-gzip.json" \
	--prepare rmi-imported --command-name "burrow import (gzip)" "burrow import $work/rootfs.tar.gz imported" \
	--prepare "fresh-dir $dir" --command-name "tar -xzf" "tar -xzf $work/rootfs.tar.gz -C $dir"
say "zstd ($((zst_bytes / 1000000)) MB), $runs runs each, as $run_user"
as_user hyperfine "${hf[@]}" --export-json "$work/results/import-zstd.json" \
	--prepare rmi-imported --command-name "burrow import (zstd)" "burrow import $work/rootfs.tar.zst imported" \
	--prepare "fresh-dir $dir" --command-name "zstd -dc | tar -x" "zstd-tar $work/rootfs.tar.zst $dir"
for f in gzip zstd; do
	cp "$work/results/import-$f.json" "$out_dir/"
	summary meta "$out_dir/import-$f.json" "bytes=$bytes" "files=$nfiles"
done

{
	echo "## Import"
	echo
	echo "As $run_user: a rootfs tarball of $((bytes / 1000000)) MB, $nfiles entries (busybox and"
	echo "files from /usr/lib), gzip -6 ($((gz_bytes / 1000000)) MB) and zstd -3 ($((zst_bytes / 1000000)) MB);"
	echo "tar unpacks into a fresh directory on the same file system as burrow's"
	echo "store. MB/s counts the uncompressed tar."
	echo
	summary table "$out_dir/import-gzip.json" --title "gzip" --ref "tar -xzf"
	summary table "$out_dir/import-zstd.json" --title "zstd" --ref "zstd -dc | tar -x"
} >"$out_dir/import.md"
cat "$out_dir/import.md"
echo "results: $out_dir" >&2
