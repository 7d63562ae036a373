#!/usr/bin/env bash
# Side-by-side start-up benchmark of burrow against its peers, with hyperfine.
#
# 1. Startup: `/bin/true` in a fresh sandbox from a busybox root filesystem,
#    for unshare (the floor: namespaces and nothing else), ch-run, bwrap,
#    podman and burrow, in one hyperfine invocation.
# 2. Creation: a container from a ~2 MB image (busybox) and from a ~200 MB
#    one (busybox + 200 MB of random data), with `burrow create` (or, while
#    that verb does not exist, `burrow run --rm`), to show whether creation
#    cost grows with image size.
# Then prints each median in ms with its ratio to ch-run and to the floor.
#
# As root it installs missing peers from Debian, builds burrow, and runs every
# sandbox as the unprivileged user burrow-bench (created if missing, with a
# subordinate id range), since rootless is what is measured. As an ordinary
# user it expects the peers installed and runs everything as that user.
# Everything the sandboxes touch lives in one temp dir, removed at the end
# (KEEP=1 keeps it). Results (hyperfine JSON + summary) go to OUT_DIR,
# default target/bench/<date>.
#
# Environment: RUNS (50), WARMUP (5), BIG_MB (200), KEEP, OUT_DIR,
# CARGO_TARGET_DIR (where cargo puts the release build), BURROW_BIN (use
# this binary instead of building one).
set -euo pipefail

usage() {
	echo "usage: $0    (env: RUNS=50 WARMUP=5 BIG_MB=200 OUT_DIR=DIR KEEP=1)" >&2
	exit 2
}
[[ $# -eq 0 ]] || usage

runs=${RUNS:-50}
warmup=${WARMUP:-5}
big_mb=${BIG_MB:-200}
repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
out_dir=${OUT_DIR:-$target_dir/bench/$(date +%Y%m%d-%H%M%S)}
status=0

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"

# --- peers -------------------------------------------------------------------
# runc: podman's fallback runtime, see below.
need_packages ch-run:charliecloud-runtime bwrap:bubblewrap podman:podman hyperfine:hyperfine \
	/bin/busybox:busybox-static newuidmap:uidmap runc:runc python3:python3

# --- build ---------------------------------------------------------------------
burrow_release

# --- the unprivileged user --------------------------------------------------
run_user=$(bench_user)

# --- fixtures in a world-readable temp dir --------------------------------
work=$(mktemp -d /tmp/burrow-bench.XXXXXX)
chmod 0755 "$work"
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	if [[ -n ${KEEP:-} ]]; then
		warn "kept $work"
		return
	fi
	# podman's rootless store holds files owned by subordinate ids, which only
	# root or `podman unshare` may remove.
	if [[ $EUID -ne 0 && -d $work/home/.local/share/containers ]]; then
		as_user podman unshare rm -rf "$work/home/.local/share/containers" || true
	fi
	rm -rf "$work" || warn "could not remove all of $work"
}
trap cleanup EXIT

mkdir -p "$work/bin" "$work/home" "$work/run" "$work/store" "$work/results"
install -m 0755 "$burrow_bin" "$work/bin/burrow"
say "building images in $work"
"$repo/rootfs-tools/busybox.sh" "$work/busybox.tar" >/dev/null
mkdir "$work/rootfs"
tar -xf "$work/busybox.tar" -C "$work/rootfs"
mkdir "$work/big"
tar -xf "$work/busybox.tar" -C "$work/big"
head -c "${big_mb}M" /dev/urandom >"$work/big/random.bin"
tar --numeric-owner --owner=0 --group=0 -cf "$work/big.tar" -C "$work/big" .
rm -rf "$work/big"
chmod -R a+rX "$work"
if [[ $EUID -eq 0 ]]; then
	# The user writes its stores and results here; the rootfs stays root's.
	chown "$run_user:" "$work/home" "$work/run" "$work/store" "$work/results"
fi
chmod 0700 "$work/run" # XDG_RUNTIME_DIR must be private

# Runs CMD once as the user; on failure prints why and returns non-zero.
probe() {
	local name=$1 err
	shift
	if err=$(as_user "$@" 2>&1 >/dev/null); then
		return 0
	fi
	warn "$name: \`$*\` failed:"
	tail -n 15 <<<"$err" | sed 's/^/   /' >&2
	return 1
}

# --- start-up: /bin/true in a fresh sandbox ---------------------------------
say "preparing peers (as $run_user)"
names=() cmds=()
add() {
	names+=("$1")
	cmds+=("$2")
}

add unshare "unshare -Urmpf --mount-proc /bin/true"
add ch-run "ch-run $work/rootfs -- /bin/true"
add bwrap "bwrap --unshare-all --bind $work/rootfs / --proc /proc --dev /dev /bin/true"

# Rootless podman with no network (like bwrap's --unshare-all: a new, empty
# network namespace; the default would also start slirp4netns or pasta).
# Its default runtime, crun, refuses hybrid cgroup v1/v2 hosts ("cgroups in
# hybrid mode not supported"); runc does not, so fall back to it.
podman_run=(run --rm --network=none localhost/busybox-bench /bin/true)
if probe "podman (import)" podman import --quiet "$work/busybox.tar" localhost/busybox-bench; then
	if probe podman podman "${podman_run[@]}"; then
		add podman "podman ${podman_run[*]}"
	elif command -v runc >/dev/null && probe "podman (runc)" podman --runtime runc "${podman_run[@]}"; then
		warn "podman's default runtime failed (above); timing it with --runtime runc"
		add "podman (runc)" "podman --runtime runc ${podman_run[*]}"
	else
		command -v runc >/dev/null || warn "(runc, which may work here, is not installed: apt-get install -y runc)"
		warn "SKIPPING podman"
		status=1
	fi
else
	warn "SKIPPING podman"
	status=1
fi

burrow_ok=1
if probe "burrow (import)" burrow import "$work/busybox.tar" busybox &&
	probe "burrow (import big)" burrow import "$work/big.tar" big &&
	probe burrow burrow run --rm --network none busybox /bin/true; then
	add burrow "burrow run --rm --network none busybox /bin/true"
else
	warn "SKIPPING burrow"
	burrow_ok=0
	status=1
fi

# Every peer must work before it is timed: a sandbox that fails fast would
# look fast. (No -i: a failure during the runs aborts the benchmark.)
for i in "${!cmds[@]}"; do
	read -ra argv <<<"${cmds[$i]}"
	probe "${names[$i]}" "${argv[@]}" || {
		warn "a peer that should work does not; stopping"
		exit 1
	}
done

hyperfine_args=(--shell=none --warmup "$warmup" --runs "$runs" --style basic)
say "startup: /bin/true in a fresh sandbox, $runs runs each"
startup_args=()
for i in "${!cmds[@]}"; do
	startup_args+=(--command-name "${names[$i]}" "${cmds[$i]}")
done
as_user hyperfine "${hyperfine_args[@]}" --export-json "$work/results/startup.json" \
	"${startup_args[@]}"

# --- creation: small vs big image ------------------------------------------
if [[ $burrow_ok -eq 1 ]]; then
	if as_user burrow create --help >/dev/null 2>&1; then
		verb="burrow create"
		small="burrow create busybox /bin/true"
		big="burrow create big /bin/true"
	else
		verb="burrow run --rm (no create verb yet)"
		small="burrow run --rm busybox /bin/true"
		big="burrow run --rm big /bin/true"
		warn "burrow create does not exist yet: timing \`burrow run --rm\` for both images"
	fi
	read -ra argv <<<"$big"
	probe "burrow (big image)" "${argv[@]}" || exit 1
	say "creation with $verb: $(du -h "$work/busybox.tar" | cut -f1) vs $(du -h "$work/big.tar" | cut -f1) image"
	as_user hyperfine "${hyperfine_args[@]}" --export-json "$work/results/create.json" \
		--command-name "small ($(du -h "$work/busybox.tar" | cut -f1))" "$small" \
		--command-name "big ($(du -h "$work/big.tar" | cut -f1))" "$big"
else
	warn "SKIPPING the creation benchmark: burrow does not run yet"
fi

# --- summary -------------------------------------------------------------------
mkdir -p "$out_dir"
cp "$work"/results/*.json "$out_dir/"
python3 - "$out_dir" <<'EOF' | tee "$out_dir/summary.txt"
import json, os, sys

out = sys.argv[1]
def load(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return []
    return [(r["command"], r["median"] * 1e3, r["stddev"] * 1e3)
            for r in json.load(open(path))["results"]]

startup = load("startup.json")
base = dict((n, m) for n, m, _ in startup)
ch, floor = base.get("ch-run"), base.get("unshare")

def table(title, rows):
    if not rows:
        return
    print(f"\n{title}")
    print(f"{'':24} {'median ms':>10} {'stddev':>8} {'x ch-run':>9} {'x unshare':>10}")
    for name, med, sd in rows:
        r_ch = f"{med / ch:.2f}" if ch else "-"
        r_fl = f"{med / floor:.2f}" if floor else "-"
        print(f"{name:24} {med:10.2f} {sd:8.2f} {r_ch:>9} {r_fl:>10}")

table("/bin/true in a fresh sandbox", startup)
table("container creation by image size", load("create.json"))
EOF
{
	echo
	echo "host: $(uname -srm), $(nproc) cpus; $(hyperfine --version); runs=$runs warmup=$warmup"
	echo "results: $out_dir"
} | tee -a "$out_dir/summary.txt"
[[ $status -eq 0 ]] || warn "some commands were skipped (see above)"
exit "$status"
