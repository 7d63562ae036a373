#!/usr/bin/env bash
# The whole benchmark suite in one command: installs the peers, builds burrow
# once (release), runs every part with that binary, and collects their
# results in one directory:
#
#   bench/results/<YYYY-MM-DD>/   (or OUT_DIR)
#     results.md        the host, burrow's commit, the targets met or missed,
#                       and every part's tables (medians, stddev, ratios)
#     start.png         /bin/true start-to-exit by tool
#     density.png       run -d + rm -f, 100 containers up, memory
#     throughput.png    pull, import and published-port MB/s
#     <part>/           each part's JSON and markdown fragment
#     logs/<part>.log   each part's output
#
# Parts (ONLY=start,density,... runs a subset, in this order):
#   start    run.sh      /bin/true: unshare, ch-run, bwrap, podman, burrow
#                        (--rm, --network host, kept), with and without a
#                        subordinate id range; creation by image size
#   density  density.sh  run -d + rm -f vs podman (default networks); 100 up
#                        and removed; Pss
#   listing  listing.sh  ps -a with 100 containers, images with 50
#   import   import.sh   import vs tar -xzf and zstd -dc | tar -x
#   pull     pull.sh     pull vs skopeo from a loopback docker-registry
#   port     port.sh     published-port throughput vs direct and podman
#   net      net.sh      user network vs loopback, default network vs direct
#   build    build.sh    burrow build vs podman build
#   api      api.sh      docker run/ps through the API service vs burrow run
#   health   health.sh   the monitors' CPU with 50 containers probed every second
#                        and podman system service
#
# Run it as root (as on the project's machines): every part runs its tools
# as the unprivileged users burrow-bench and burrow-bench-nosub. As an
# ordinary user it expects the peers installed, runs the parts that work
# without root (start, density, listing, import) as that user, and skips the
# others. A failed part is reported in results.md; the others still run.
#
# Environment: ONLY (all parts), QUICK=1 (a smoke run: few runs, small
# sizes; every part), OUT_DIR, BURROW_BIN (use this binary instead of
# building one), CARGO_TARGET_DIR, COMMIT=1 (git commit results.md, the
# charts and the parts' JSON when done; not the logs), KEEP. RUNS, WARMUP and the parts' other knobs pass
# through to every part that reads them.
set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
day=$(date -u +%F)
out=${OUT_DIR:-$repo/bench/results/$day}

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"

all_parts=(start density listing import pull port net build api health)
declare -A script=([start]=run.sh [density]=density.sh [listing]=listing.sh [import]=import.sh
	[pull]=pull.sh [port]=port.sh [net]=net.sh [build]=build.sh [api]=api.sh [health]=health.sh)
declare -A needs_root=([pull]=1 [port]=1 [net]=1 [build]=1 [api]=1)
IFS=, read -ra parts <<<"${ONLY:-$(
	IFS=,
	echo "${all_parts[*]}"
)}"
for p in "${parts[@]}"; do
	[[ -n ${script[$p]:-} ]] || {
		warn "unknown part '$p' in ONLY (parts: ${all_parts[*]})"
		exit 2
	}
done

# --- peers and burrow, once --------------------------------------------------
if [[ $EUID -eq 0 ]]; then
	need_packages ch-run:charliecloud-runtime bwrap:bubblewrap podman:podman runc:runc \
		skopeo:skopeo docker-registry:docker-registry hyperfine:hyperfine \
		/bin/busybox:busybox-static newuidmap:uidmap curl:curl zstd:zstd \
		/usr/bin/python3:python3 /usr/lib/python3/dist-packages/matplotlib:python3-matplotlib
fi
burrow_release
export BURROW_BIN=$burrow_bin

mkdir -p "$out/logs"
quick=
[[ ${QUICK:-0} == 0 ]] || quick=1
commit=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$repo" status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then
	commit+=" with uncommitted changes"
fi
version_commit=$("$burrow_bin" version 2>/dev/null | awk '/Git commit/ {print $3}')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the parts -------------------------------------------------------------------
declare -A outcome took
for p in "${parts[@]}"; do
	if [[ -n ${needs_root[$p]:-} && $EUID -ne 0 ]]; then
		warn "SKIPPING $p: it needs root (run bench/all.sh as root)"
		outcome[$p]="skipped: needs root"
		continue
	fi
	say "part $p (bench/${script[$p]})"
	rm -rf "${out:?}/$p"
	start=$(date +%s)
	set +e
	OUT_DIR=$out/$p bash "$repo/bench/${script[$p]}" 2>&1 | tee "$out/logs/$p.log"
	rc=${PIPESTATUS[0]}
	set -e
	took[$p]=$(($(date +%s) - start))
	if [[ $rc -eq 0 ]]; then
		outcome[$p]=ok
	elif compgen -G "$out/$p/*.md" >/dev/null; then
		outcome[$p]="exit $rc, with results (see logs/$p.log)"
	else
		outcome[$p]="**failed** (exit $rc, see logs/$p.log)"
	fi
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- charts and results.md ---------------------------------------------------
peer_versions() {
	local pkg v sep=" "
	for pkg in hyperfine podman runc crun charliecloud-runtime bubblewrap skopeo docker-registry passt; do
		v=$(dpkg-query -W -f '${Version}' "$pkg" 2>/dev/null) || continue
		printf '%s%s %s' "$sep" "$pkg" "$v"
		sep=", "
	done
}
charts=()
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
	mapfile -t charts < <(/usr/bin/python3 "$repo/bench/chart.py" "$out")
else
	warn "no charts: python3-matplotlib is not installed"
fi
{
	echo "# burrow benchmarks, $day"
	echo
	if [[ -n $quick ]]; then
		echo "**QUICK=1: a smoke run (few runs, small sizes); not numbers to quote.**"
		echo
	fi
	echo "- burrow: commit $commit (\`burrow version\`: ${version_commit:-?}), release build"
	echo "- host: Linux $(uname -r), $(nproc) x $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)," \
		"$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM," \
		"Debian $(cat /etc/debian_version 2>/dev/null || echo ?)"
	echo "- load average before: $load_before, after: $load_after (a shared machine makes single numbers noisy; ratios within one run hold better)"
	echo "- peers (Debian package versions):$(peer_versions)"
	echo "- run by: bench/all.sh${ONLY:+ with ONLY=$ONLY}${quick:+ with QUICK=1}, as $(id -un)"
	echo
	echo "## Targets"
	echo
	summary targets "$out"
	for c in "${charts[@]}"; do
		echo "![${c##*/}](${c##*/})"
		echo
	done
	for p in "${parts[@]}"; do
		for f in "$out/$p"/*.md; do
			[[ -f $f ]] || continue
			cat "$f"
			echo
		done
	done
	echo "## Parts"
	echo
	echo "| part | script | outcome | wall time |"
	echo "| --- | --- | --- | ---: |"
	for p in "${parts[@]}"; do
		echo "| $p | bench/${script[$p]} | ${outcome[$p]} | ${took[$p]:-0} s |"
	done
} >"$out/results.md"
say "results: $out/results.md"

status=0
for p in "${parts[@]}"; do
	[[ ${outcome[$p]} == ok || ${outcome[$p]} == skipped* ]] || status=1
done

# The table, the charts and the parts' JSON and fragments (a few dozen KB,
# enough to redraw the charts); bench/results/.gitignore leaves out the logs.
if [[ ${COMMIT:-0} != 0 ]]; then
	git -C "$repo" add -- "$out"
	git -C "$repo" commit -q -m "bench: results of $day${quick:+ (QUICK=1)}" -- "$out"
	say "committed $out"
fi
exit "$status"
