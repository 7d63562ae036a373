#!/usr/bin/env bash
# Published-port throughput, side by side: one download of SIZE_MB (256)
# from busybox httpd in a burrow container, reached
#   - directly: the same server in a `--network host` container, so the
#     bytes go from httpd to curl over the host's loopback with nothing in
#     between (the floor);
#   - through burrow's built-in forwarder: `-p HOST:CTR` on a container with
#     `--network none` (no pasta or slirp4netns involved);
#   - through burrow's forwarder on the default network (pasta or
#     slirp4netns started as well; the forwarder still carries the bytes);
#   - through podman's `-p` (rootlessport), when podman works here;
# in one hyperfine run, with curl writing to /dev/null. Prints medians,
# MB/s and each ratio to the direct path.
#
# Run it as root (as on the project's machines): it installs what is missing
# from Debian and runs the containers as the unprivileged user burrow-bench.
#
# Results (hyperfine JSON, port.md) go to OUT_DIR (default
# target/bench/port-<date-time>).
#
# Environment: RUNS (10), WARMUP (2), SIZE_MB (256), QUICK=1 (RUNS=3
# WARMUP=1 SIZE_MB=32 unless set), KEEP, OUT_DIR, BURROW_BIN,
# CARGO_TARGET_DIR, BASELINE_BIN (another burrow build whose forwarder is
# timed beside this one's, to compare a change).
set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
out_dir=${OUT_DIR:-$target_dir/bench/port-$(date +%Y%m%d-%H%M%S)}

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
runs=$(knob RUNS 10 3)
warmup=$(knob WARMUP 2 1)
size_mb=$(knob SIZE_MB 256 32)

if [[ $EUID -ne 0 ]]; then
	warn "run as root: the benchmark runs its containers as the unprivileged user burrow-bench"
	exit 1
fi
# runc: podman's fallback runtime, see below.
need_packages hyperfine:hyperfine curl:curl newuidmap:uidmap podman:podman runc:runc /bin/busybox:busybox-static

burrow_release

run_user=$(bench_user)
work=$(mktemp -d /tmp/burrow-portbench.XXXXXX)
chmod 0755 "$work"
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	as_user burrow rm -f port-direct port-none port-private port-base >/dev/null 2>&1 || true
	as_user podman rm -f port-podman >/dev/null 2>&1 || true
	podman_stop_pause "$work"
	if [[ -n ${KEEP:-} ]]; then
		warn "kept $work"
		return
	fi
	as_user podman system reset -f >/dev/null 2>&1 || true
	rm -rf "$work" || warn "could not remove all of $work"
}
trap cleanup EXIT
mkdir -p "$work/bin" "$work/home" "$work/run" "$work/store" "$work/www"
install -m 0755 "$burrow_bin" "$work/bin/burrow"
[[ -z ${BASELINE_BIN:-} ]] || install -m 0755 "$BASELINE_BIN" "$work/bin/burrow-base"
"$repo/rootfs-tools/busybox.sh" "$work/busybox.tar" >/dev/null
chmod a+r "$work/busybox.tar"
head -c "$((size_mb * 1024 * 1024))" /dev/urandom >"$work/www/blob"
chmod -R a+rX "$work/www"
chown -R "$run_user:" "$work/home" "$work/run" "$work/store"
chmod 0700 "$work/run"

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
p_direct=$(free_port)
p_none=$(free_port)
p_private=$(free_port)
p_podman=$(free_port)
p_base=$(free_port)

as_user burrow import "$work/busybox.tar" busybox >/dev/null
# httpd serves the host directory read-only; every path sends the same file.
serve=(-v "$work/www:/www:ro" busybox httpd -f -p 8000 -h /www)
as_user burrow run -d --name port-direct --network host -v "$work/www:/www:ro" busybox httpd -f -p "127.0.0.1:$p_direct" -h /www >/dev/null
as_user burrow run -d --name port-none --network none -p "127.0.0.1:$p_none:8000" "${serve[@]}" >/dev/null
as_user burrow run -d --name port-private -p "127.0.0.1:$p_private:8000" "${serve[@]}" >/dev/null

names=(direct "burrow -p (--network none)" "burrow -p (default network)")
ports=("$p_direct" "$p_none" "$p_private")
if [[ -n ${BASELINE_BIN:-} ]]; then
	as_user burrow-base run -d --name port-base --network none -p "127.0.0.1:$p_base:8000" "${serve[@]}" >/dev/null
	names+=("baseline -p (--network none)")
	ports+=("$p_base")
fi
# crun refuses hybrid cgroup v1/v2 hosts ("cgroups in hybrid mode not
# supported"); runc does not, so podman falls back to it there.
podman_up() {
	as_user podman "$@" run -d --name port-podman -p "127.0.0.1:$p_podman:8000" -v "$work/www:/www:ro" \
		localhost/busybox httpd -f -p 8000 -h /www >/dev/null 2>>"$work/podman.err"
}
if as_user podman import --quiet "$work/busybox.tar" localhost/busybox >/dev/null 2>&1 &&
	{ podman_up || { as_user podman rm -f port-podman >/dev/null 2>&1; command -v runc >/dev/null && podman_up --runtime runc; }; }; then
	names+=("podman -p")
	ports+=("$p_podman")
else
	warn "podman could not publish a port here, left out: $(tail -n1 "$work/podman.err" 2>/dev/null)"
fi

# Each path must deliver the whole file before it is timed.
want=$((size_mb * 1024 * 1024))
args=()
for i in "${!names[@]}"; do
	url="http://127.0.0.1:${ports[$i]}/blob"
	for _ in $(seq 50); do
		got=$(curl -s -o /dev/null -w '%{size_download}' "$url" || true)
		[[ $got == "$want" ]] && break
		sleep 0.1
	done
	if [[ $got != "$want" ]]; then
		warn "${names[$i]}: got $got bytes of $want from $url"
		exit 1
	fi
	args+=(--command-name "${names[$i]}" "curl -s -o /dev/null $url")
done

say "$size_mb MiB per download; $runs runs each, as $run_user"
hyperfine --style basic --shell=none --runs "$runs" --warmup "$warmup" \
	--export-json "$work/port.json" "${args[@]}"

python3 - "$work/port.json" "$size_mb" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
mb = int(sys.argv[2]) * 1.048576
med = {r["command"]: r["median"] for r in res}
d = med["direct"]
print()
print(f"{'':30} {'median':>10} {'MB/s':>8} {'/ direct':>9}")
for name, t in med.items():
    print(f"{name:30} {t*1000:8.0f} ms {mb/t:8.0f} {t/d:9.2f}")
PY

mkdir -p "$out_dir"
cp "$work/port.json" "$out_dir/"
summary meta "$out_dir/port.json" "bytes=$want"
{
	echo "## Published-port throughput"
	echo
	echo "As $run_user: \`curl -o /dev/null\` of a $size_mb MiB file from busybox httpd in a"
	echo "container, over the host's loopback (direct: a \`--network host\` container)"
	echo "or through a published port. Target: within 2x of direct."
	echo
	summary table "$out_dir/port.json" --ref direct
} >"$out_dir/port.md"
echo "results: $out_dir" >&2
