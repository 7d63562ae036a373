#!/usr/bin/env bash
# Image builds, side by side: `burrow build` against `podman build` (buildah)
# of the same Dockerfile and context, rootless as the user burrow-bench:
# an uncached build (--no-cache: every RUN runs, every COPY is made again)
# and a cached rebuild (nothing changed: every step comes from the cache),
# in hyperfine runs. Prints medians and the ratios burrow/podman.
#
# The Dockerfile: FROM a busybox image both tools imported, a RUN that
# writes a file, COPY of a directory of DATA_MB of random files, WORKDIR,
# COPY of one script, CMD. Run as root (as on the project's machines): it
# installs what is missing from Debian and runs both tools as the user.
#
# Environment: RUNS (10), WARMUP (1), DATA_MB (20), QUICK=1 (RUNS=2
# WARMUP=0 DATA_MB=4 unless set), KEEP, BURROW_BIN, CARGO_TARGET_DIR,
# OUT_DIR.
set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
out_dir=${OUT_DIR:-$target_dir/bench/build-$(date +%Y%m%d-%H%M%S)}

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
runs=$(knob RUNS 10 2)
warmup=$(knob WARMUP 1 0)
data_mb=$(knob DATA_MB 20 4)

if [[ $EUID -ne 0 ]]; then
	warn "run as root: the stores hold files of subordinate ids, which only root removes afterwards"
	exit 1
fi
need_packages podman:podman runc:runc hyperfine:hyperfine newuidmap:uidmap /bin/busybox:busybox-static

burrow_release

run_user=$(bench_user)
work=$(mktemp -d /tmp/burrow-buildbench.XXXXXX)
chmod 0755 "$work"
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	podman_stop_pause "$work"
	if [[ -n ${KEEP:-} ]]; then
		warn "kept $work"
		return
	fi
	rm -rf "$work" || warn "could not remove all of $work"
}
trap cleanup EXIT
mkdir -p "$work/bin" "$work/home" "$work/run" "$work/store" "$work/results" "$work/ctx/data"
install -m 0755 "$burrow_bin" "$work/bin/burrow"
"$repo/rootfs-tools/busybox.sh" "$work/busybox.tar" >/dev/null
for i in $(seq 1 "$((data_mb * 4))"); do
	head -c 256K /dev/urandom >"$work/ctx/data/f$i.bin"
done
cat >"$work/ctx/app.sh" <<'SH'
#!/bin/sh
echo "$(wc -l < /lines) lines, $(ls /data | wc -l) data files"
SH
chmod 0755 "$work/ctx/app.sh"
cat >"$work/ctx/Dockerfile" <<'DOCKERFILE'
FROM localhost/bench-busybox
RUN for i in $(seq 1 1000); do echo "line $i"; done > /lines && sha256sum /bin/busybox > /sum
COPY data/ /data/
WORKDIR /app
COPY app.sh /app/
CMD ["/app/app.sh"]
DOCKERFILE
chmod -R a+rX "$work"
chown "$run_user:" "$work/home" "$work/run" "$work/store" "$work/results"
chmod 0700 "$work/run"

# podman's default runtime (crun) fails on hybrid cgroup hosts; runc works.
podman=(podman --runtime runc)
say "importing the base image (as $run_user)"
as_user burrow import "$work/busybox.tar" localhost/bench-busybox >/dev/null
as_user "${podman[@]}" import --quiet "$work/busybox.tar" localhost/bench-busybox >/dev/null

# Each must build and its image run before it is timed.
say "checking both builds"
as_user burrow build -q -t bench-app "$work/ctx" >/dev/null
as_user burrow run --rm --network none bench-app
as_user "${podman[@]}" build -q -t bench-app "$work/ctx" >/dev/null
as_user "${podman[@]}" run --rm --network none bench-app || warn "podman cannot run the image here (its build is timed anyway)"

hf=(--warmup "$warmup" --runs "$runs" --style basic)
say "uncached builds (--no-cache), $runs runs each"
as_user hyperfine "${hf[@]}" --export-json "$work/results/uncached.json" \
	--command-name burrow "burrow build -q --no-cache -t bench-app $work/ctx" \
	--command-name podman "${podman[*]} build -q --no-cache -t bench-app $work/ctx"
say "cached rebuilds (nothing changed), $runs runs each"
as_user hyperfine "${hf[@]}" --export-json "$work/results/cached.json" \
	--command-name burrow "burrow build -q -t bench-app $work/ctx" \
	--command-name podman "${podman[*]} build -q -t bench-app $work/ctx"

mkdir -p "$out_dir"
cp "$work"/results/*.json "$out_dir/"
python3 - "$out_dir" <<'EOF' | tee "$out_dir/summary.txt"
import json, os, sys

out = sys.argv[1]
for name, title in (("uncached.json", "uncached build (--no-cache)"),
                    ("cached.json", "cached rebuild")):
    rows = {r["command"]: r for r in json.load(open(os.path.join(out, name)))["results"]}
    print(f"\n{title}")
    print(f"{'':10} {'median ms':>10} {'stddev':>8}")
    for n in ("burrow", "podman"):
        r = rows[n]
        print(f"{n:10} {r['median'] * 1e3:10.1f} {r['stddev'] * 1e3:8.1f}")
    print(f"burrow/podman: {rows['burrow']['median'] / rows['podman']['median']:.2f}")
EOF
{
	echo "## Image builds"
	echo
	echo "As $run_user: the same Dockerfile (FROM busybox, RUN, COPY of $data_mb MB in"
	echo "files, WORKDIR, COPY, CMD) with \`burrow build\` and \`podman build\` (runc)."
	echo
	summary table "$out_dir/uncached.json" --title "uncached (--no-cache)" --ref podman
	summary table "$out_dir/cached.json" --title "cached rebuild (nothing changed)" --ref podman
} >"$out_dir/build.md"
{
	echo
	echo "host: $(uname -srm), $(nproc) cpus; $(hyperfine --version); runs=$runs warmup=$warmup data=${data_mb} MB"
	echo "results: $out_dir"
} | tee -a "$out_dir/summary.txt"
