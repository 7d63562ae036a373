#!/usr/bin/env bash
# Side-by-side start-up benchmark of burrow against its peers, with hyperfine.
#
# 1. Startup: `/bin/true` in a fresh sandbox from a busybox root filesystem,
#    for unshare (the floor: namespaces and nothing else), ch-run, bwrap,
#    podman and burrow (`run --rm`, `run --rm --network host`, and a plain
#    `run` whose container is kept, removed before the next run), in one
#    hyperfine invocation; then the same without podman as a second user
#    with no subordinate id range (burrow maps only the user itself).
# 2. Creation: a container from a ~2 MB image (busybox) and from a ~200 MB
#    one (busybox + 200 MB of random data), with `burrow create` (or, while
#    that verb does not exist, `burrow run --rm`), to show whether creation
#    cost grows with image size.
# Then prints each median in ms with its ratio to ch-run and to the floor.
#
# As root it installs missing peers from Debian, builds burrow, and runs every
# sandbox as the unprivileged user burrow-bench (created if missing, with a
# subordinate id range) and burrow-bench-nosub (without one), since rootless
# is what is measured. As an ordinary user it expects the peers installed and
# runs everything as that user (and skips the second user).
# Everything the sandboxes touch lives in one temp dir, removed at the end
# (KEEP=1 keeps it). Results (hyperfine JSON, start.md with the tables) go
# to OUT_DIR, default target/bench/<date>.
#
# Environment: RUNS (50), WARMUP (5), BIG_MB (200), QUICK=1 (RUNS=5
# WARMUP=1 BIG_MB=20 unless set), KEEP, OUT_DIR, CARGO_TARGET_DIR (where
# cargo puts the release build), BURROW_BIN (use this binary instead of
# building one).
set -euo pipefail

usage() {
	echo "usage: $0    (env: RUNS=50 WARMUP=5 BIG_MB=200 OUT_DIR=DIR KEEP=1)" >&2
	exit 2
}
[[ $# -eq 0 ]] || usage

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
out_dir=${OUT_DIR:-$target_dir/bench/$(date +%Y%m%d-%H%M%S)}
status=0

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
runs=$(knob RUNS 50 5)
warmup=$(knob WARMUP 5 1)
big_mb=$(knob BIG_MB 200 20)

# --- peers -------------------------------------------------------------------
# runc: podman's fallback runtime, see below.
need_packages ch-run:charliecloud-runtime bwrap:bubblewrap podman:podman hyperfine:hyperfine \
	/bin/busybox:busybox-static newuidmap:uidmap runc:runc python3:python3

# --- build ---------------------------------------------------------------------
burrow_release

# --- the unprivileged users ------------------------------------------------
run_user=$(bench_user)
nosub_user=$(bench_user_nosub) || nosub_user=

# --- fixtures in a world-readable temp dir --------------------------------
work=$(mktemp -d /tmp/burrow-bench.XXXXXX)
chmod 0755 "$work"
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	if [[ -n ${KEEP:-} ]]; then
		podman_stop_pause "$work"
		warn "kept $work"
		return
	fi
	# podman's rootless store holds files owned by subordinate ids, which only
	# root or `podman unshare` may remove.
	if [[ $EUID -ne 0 && -d $work/home/.local/share/containers ]]; then
		as_user podman unshare rm -rf "$work/home/.local/share/containers" || true
	fi
	podman_stop_pause "$work"
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
if [[ -n $nosub_user ]]; then
	user_dirs "$work/nosub" "$nosub_user"
	install -d -o "$nosub_user" "$work/nosub/results"
fi
# Removes the kept container of the plain `run` before each timed run.
cat >"$work/bin/rm-kept" <<'SH'
#!/bin/sh
burrow rm -f bench-kept >/dev/null 2>&1 || true
SH
chmod 0755 "$work/bin/rm-kept"

# --- start-up: /bin/true in a fresh sandbox ---------------------------------
say "preparing peers (as $run_user)"
names=() cmds=() preps=()
add() {
	names+=("$1")
	cmds+=("$2")
	preps+=("${3:-true}")
}

add unshare "unshare -Urmpf --mount-proc /bin/true"
add ch-run "ch-run $work/rootfs -- /bin/true"
add bwrap "bwrap --unshare-all --bind $work/rootfs / --proc /proc --dev /dev /bin/true"

# Rootless podman with no network (like bwrap's --unshare-all: a new, empty
# network namespace; the default would also start slirp4netns or pasta),
# with runc where its default runtime fails (lib.sh: pick_podman).
if pick_podman "$work/busybox.tar" localhost/busybox-bench; then
	podman_name=podman
	[[ ${#podman[@]} -eq 1 ]] || podman_name="podman (runc)"
	add "$podman_name" "${podman[*]} run --rm --network=none localhost/busybox-bench /bin/true"
	# What a podman user gets by default (pasta or slirp4netns).
	add "default network: $podman_name" "${podman[*]} run --rm localhost/busybox-bench /bin/true"
else
	warn "SKIPPING podman"
	status=1
fi

# burrow's three ways: a container removed at exit; the same in the host's
# network namespace (no new one to set up); a plain `run`, whose container
# is kept (removed by rm-kept before the next run, untimed).
burrow_cmds() {
	add "burrow run --rm" "burrow run --rm --network none busybox /bin/true"
	# What a burrow user gets by default: a private network namespace on
	# the keeper's bridge (one pasta, else slirp4netns, for all; loopback
	# only where neither can start); and the same with a helper per
	# container, as before the keeper.
	add "default network: burrow run --rm" "burrow run --rm busybox /bin/true"
	add "default network, a helper each: burrow run --rm" "env BURROW_KEEPER=off burrow run --rm busybox /bin/true"
	add "burrow --rm --network host" "burrow run --rm --network host busybox /bin/true"
	add "burrow run (kept)" "burrow run --name bench-kept --network none busybox /bin/true" rm-kept
}
burrow_ok=1
if probe "burrow (import)" burrow import "$work/busybox.tar" busybox &&
	probe "burrow (import big)" burrow import "$work/big.tar" big &&
	probe burrow burrow run --rm --network none busybox /bin/true; then
	burrow_cmds
else
	warn "SKIPPING burrow"
	burrow_ok=0
	status=1
fi

# Every peer must work before it is timed: a sandbox that fails fast would
# look fast. (No -i: a failure during the runs aborts the benchmark.)
check_all() {
	local i argv
	for i in "${!cmds[@]}"; do
		read -ra argv <<<"${preps[$i]}"
		as_user "${argv[@]}"
		read -ra argv <<<"${cmds[$i]}"
		probe "${names[$i]}" "${argv[@]}" || {
			warn "a peer that should work does not; stopping"
			exit 1
		}
	done
}
# Times every command added, in one hyperfine run, into the user's results
# dir as $1.
time_all() {
	local i args=()
	for i in "${!cmds[@]}"; do
		args+=(--prepare "${preps[$i]}" --command-name "${names[$i]}" "${cmds[$i]}")
	done
	as_user hyperfine "${hyperfine_args[@]}" --export-json "${user_dir:-$work}/results/$1" "${args[@]}"
}
check_all
hyperfine_args=(--shell=none --warmup "$warmup" --runs "$runs" --style basic)
say "startup: /bin/true in a fresh sandbox, $runs runs each, as $run_user"
time_all startup.json

# The same without a subordinate id range: no newuidmap/newgidmap, and
# only the user itself mapped (podman needs a range for its images).
if [[ -z $nosub_user ]]; then
	warn "SKIPPING the run without a subordinate id range: it needs root to switch to a second user"
elif [[ $burrow_ok -eq 1 ]]; then
	names=() cmds=() preps=()
	add unshare "unshare -Urmpf --mount-proc /bin/true"
	add ch-run "ch-run $work/rootfs -- /bin/true"
	add bwrap "bwrap --unshare-all --bind $work/rootfs / --proc /proc --dev /dev /bin/true"
	burrow_cmds
	# A subshell: as_user reads these two for the second user.
	# shellcheck disable=SC2030,SC2034
	if (
		run_user=$nosub_user user_dir=$work/nosub
		probe "burrow (import, $nosub_user)" burrow import "$work/busybox.tar" busybox || exit 1
		check_all
		say "startup without a subordinate id range, $runs runs each, as $run_user"
		time_all startup-nosub.json
	); then :; else
		warn "the run as $nosub_user failed"
		status=1
	fi
fi

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
	small_name="small ($(du -h "$work/busybox.tar" | cut -f1))"
	big_name="big ($(du -h "$work/big.tar" | cut -f1))"
	say "creation with $verb: $small_name vs $big_name image"
	as_user hyperfine "${hyperfine_args[@]}" --export-json "$work/results/create.json" \
		--command-name "$small_name" "$small" --command-name "$big_name" "$big"
else
	warn "SKIPPING the creation benchmark: burrow does not run yet"
fi

# --- summary -------------------------------------------------------------------
mkdir -p "$out_dir"
cp "$work"/results/*.json "$out_dir/"
[[ ! -f $work/nosub/results/startup-nosub.json ]] || cp "$work/nosub/results/startup-nosub.json" "$out_dir/"
{
	echo "## Start-up: /bin/true in a fresh sandbox"
	echo
	echo "One hyperfine run per user, \`--shell=none\`, warm-up runs: $warmup; a busybox"
	echo "rootfs; burrow and podman with \`--network none\` unless the name says"
	echo "\"default network\" (what a user gets without the flag: pasta). The container"
	echo "of \`burrow run (kept)\` is removed before each run, untimed."
	echo
	# shellcheck disable=SC2031  # the subshell's run_user was another
	summary table "$out_dir/startup.json" --title "as $run_user (with a subordinate id range)" \
		--ref ch-run --ref unshare
	if [[ -f $out_dir/startup-nosub.json ]]; then
		summary table "$out_dir/startup-nosub.json" --title "as $nosub_user (no subordinate id range)" \
			--ref ch-run --ref unshare
	fi
	if [[ -f $out_dir/create.json ]]; then
		summary table "$out_dir/create.json" --title "container creation by image size ($verb)" \
			--ref "$small_name"
	fi
} >"$out_dir/start.md"
cat "$out_dir/start.md"
{
	echo "host: $(uname -srm), $(nproc) cpus; $(hyperfine --version); runs=$runs warmup=$warmup"
	echo "results: $out_dir"
} >&2
[[ $status -eq 0 ]] || warn "some commands were skipped (see above)"
exit "$status"
