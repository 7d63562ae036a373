#!/usr/bin/env bash
# Two builds of burrow side by side: does a change make starting a container
# slower? `run --rm` of /bin/true from busybox on the default network and
# with `--network none`, for BASE_BIN and BURROW_BIN, interleaved in one
# hyperfine run per user (with a subordinate id range, and without one as
# root can switch to a second user), each binary with its own store and
# runtime directory (so each has its own keeper). Prints every median and
# the new binary's ratio to the base's.
#
# As root it runs the containers as burrow-bench and burrow-bench-nosub (see
# lib.sh); as an ordinary user, as that user.
#
# Environment: BASE_BIN (required), BURROW_BIN (else a release build of this
# tree), RUNS (40), WARMUP (5), QUICK=1 (RUNS=5 WARMUP=1), OUT_DIR (default
# target/bench/versus-<time>), KEEP.
set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
out_dir=${OUT_DIR:-$target_dir/bench/versus-$(date +%Y%m%d-%H%M%S)}

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
runs=$(knob RUNS 40 5)
warmup=$(knob WARMUP 5 1)
[[ -n ${BASE_BIN:-} && -x ${BASE_BIN:-} ]] || {
	warn "BASE_BIN must name the burrow binary to compare against"
	exit 2
}

need_packages hyperfine:hyperfine /bin/busybox:busybox-static newuidmap:uidmap python3:python3
burrow_release
run_user=$(bench_user)
nosub_user=$(bench_user_nosub) || nosub_user=
bench_work versus
install -m 0755 "$BASE_BIN" "$work/bin/burrow-base"
mkdir -p "$out_dir"

# One user's run: a store per binary (the base's under $dir/base), busybox
# imported into each, every command checked once, then all four timed
# together.
time_user() {
	local dir=$1 label=$2 json
	json=$dir/results/versus-$label.json
	mkdir -p "$dir/base"
	user_dirs "$dir/base" "$run_user"
	probe "new: import" burrow import "$work/busybox.tar" busybox
	user_dir=$dir/base probe "base: import" burrow-base import "$work/busybox.tar" busybox
	local base="env BURROW_ROOT=$dir/base/store XDG_RUNTIME_DIR=$dir/base/run burrow-base"
	local names=("new: default network" "base: default network" "new: --network none" "base: --network none")
	local cmds=("burrow run --rm busybox /bin/true" "$base run --rm busybox /bin/true"
		"burrow run --rm --network none busybox /bin/true" "$base run --rm --network none busybox /bin/true")
	say "run --rm, new against base, $runs runs each, as $run_user"
	time_commands "$json"
	cp "$json" "$out_dir/"
}

bench_teardown() {
	# The keepers idle out on their own; stop them now so the temp dir goes.
	pkill -u "$run_user" -f "burrow.* __keeper" 2>/dev/null || true
	[[ -z $nosub_user ]] || pkill -u "$nosub_user" -f "burrow.* __keeper" 2>/dev/null || true
}

time_user "$work" range
if [[ -n $nosub_user ]]; then
	user_dirs "$work/nosub" "$nosub_user"
	install -d -o "$nosub_user" "$work/nosub/results"
	# shellcheck disable=SC2030,SC2034
	(run_user=$nosub_user user_dir=$work/nosub time_user "$work/nosub" nosub)
fi

python3 - "$out_dir" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
lines = ["| user | mode | base (ms) | new (ms) | new / base |", "| --- | --- | --- | --- | --- |"]
for f in sorted(out.glob("versus-*.json")):
    user = f.stem.removeprefix("versus-")
    med = {r["command"]: r["median"] * 1000 for r in json.loads(f.read_text())["results"]}
    for mode in ("default network", "--network none"):
        b, n = med[f"base: {mode}"], med[f"new: {mode}"]
        lines.append(f"| {user} | {mode} | {b:.2f} | {n:.2f} | {n / b:.2f}x |")
text = "\n".join(lines) + "\n"
(out / "versus.md").write_text(text)
print(text)
PY
