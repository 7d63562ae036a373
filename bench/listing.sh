#!/usr/bin/env bash
# Listing speed with a full store, rootless, as the unprivileged user
# burrow-bench: `burrow ps -a` with CONTAINERS (100) containers and
# `burrow images` with IMAGES (50) images, in one hyperfine run (the target
# is under 20 ms each).
#
# The containers are made with `burrow create` (created, never started: a
# listing reads the same records either way). The images are the busybox
# rootfs tarball imported IMAGES times, each with its own LABEL, so there are
# IMAGES different image ids (each with its own config to read) sharing one
# layer, under IMAGES repository names.
#
# Run as root (as on the project's machines) or as an ordinary user. Results
# (JSON, listing.md) go to OUT_DIR (default target/bench/listing-<date-time>).
#
# Environment: RUNS (50), WARMUP (5), CONTAINERS (100), IMAGES (50),
# QUICK=1 (RUNS=5 WARMUP=1 unless set; same counts), KEEP, OUT_DIR,
# BURROW_BIN, CARGO_TARGET_DIR.
set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
out_dir=${OUT_DIR:-$target_dir/bench/listing-$(date +%Y%m%d-%H%M%S)}

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
runs=$(knob RUNS 50 5)
warmup=$(knob WARMUP 5 1)
containers=$(knob CONTAINERS 100 100)
images=$(knob IMAGES 50 50)

need_packages hyperfine:hyperfine newuidmap:uidmap /bin/busybox:busybox-static
burrow_release
run_user=$(bench_user)
bench_work listbench
mkdir -p "$out_dir"

say "filling the store: $images images, $containers containers (as $run_user)"
cat >"$work/bin/fill" <<'SH'
#!/bin/sh
set -e
tar=$1 images=$2 containers=$3
i=1
while [ "$i" -le "$images" ]; do
	burrow import --change "LABEL bench.n=$i" "$tar" "localhost/listing-$i:1" >/dev/null
	i=$((i + 1))
done
i=1
while [ "$i" -le "$containers" ]; do
	burrow create --network none "localhost/listing-$(((i - 1) % images + 1)):1" /bin/true >/dev/null
	i=$((i + 1))
done
SH
chmod 0755 "$work/bin/fill"
as_user fill "$work/busybox.tar" "$images" "$containers"
got_c=$(as_user burrow ps -aq | wc -l)
got_i=$(as_user burrow images -q | sort -u | wc -l)
if [[ $got_c -ne $containers || $got_i -ne $images ]]; then
	warn "the store holds $got_c containers and $got_i image ids, not $containers and $images"
	exit 1
fi

say "listing, $runs runs each"
as_user hyperfine --shell=none --style basic --runs "$runs" --warmup "$warmup" \
	--export-json "$work/results/listing.json" \
	--command-name "ps -a ($containers containers)" "burrow ps -a" \
	--command-name "images ($images images)" "burrow images"
cp "$work/results/listing.json" "$out_dir/"
summary meta "$out_dir/listing.json" "containers=$containers" "images=$images"

{
	echo "## Listing"
	echo
	echo "As $run_user: $containers created containers; $images images (the busybox"
	echo "tarball imported $images times with a distinct LABEL: $images image ids, one"
	echo "shared layer). Target: under 20 ms each."
	echo
	summary table "$out_dir/listing.json"
} >"$out_dir/listing.md"
cat "$out_dir/listing.md"
echo "results: $out_dir" >&2
