#!/usr/bin/env bash
# The Docker Engine API, rootless, as the unprivileged user burrow-bench:
# Debian's docker 20.10 CLI driving `burrow system service`, beside
# `burrow run` itself and beside the same CLI driving `podman system
# service`, in one hyperfine run; then `docker ps` through burrow's socket
# with CONTAINERS (100) containers.
#
# Targets: `docker run --rm IMAGE /bin/true` through burrow's socket within
# 2x of `burrow run --rm IMAGE /bin/true`, at least 10x faster than through
# podman's service; `docker ps` with 100 containers under 30 ms. Every
# `run` here uses the default network a user gets (burrow: the keeper's
# bridge, else a pasta or slirp4netns each, else loopback only; podman: its
# own default).
#
# Run as root (as on the project's machines) or as an ordinary user with
# docker.io and podman installed. Results (JSON, api.md) go to OUT_DIR
# (default target/bench/api-<date-time>).
#
# Environment: RUNS (30), WARMUP (3), CONTAINERS (100), QUICK=1 (RUNS=5
# WARMUP=1), KEEP, OUT_DIR, BURROW_BIN, CARGO_TARGET_DIR.
set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
out_dir=${OUT_DIR:-$target_dir/bench/api-$(date +%Y%m%d-%H%M%S)}

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
runs=$(knob RUNS 30 5)
warmup=$(knob WARMUP 3 1)
containers=$(knob CONTAINERS 100 100)

if [[ $EUID -eq 0 && ! -x /usr/sbin/policy-rc.d ]]; then
	# docker.io brings dockerd and containerd: never start them.
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 0755 /usr/sbin/policy-rc.d
fi
need_packages hyperfine:hyperfine newuidmap:uidmap /bin/busybox:busybox-static \
	/usr/bin/docker:docker.io podman:podman curl:curl python3:python3
burrow_release
run_user=$(bench_user)
bench_work apibench
mkdir -p "$out_dir"
docker=/usr/bin/docker

bench_teardown() {
	[[ -z ${burrow_svc:-} ]] || kill "$burrow_svc" 2>/dev/null || true
	[[ -z ${podman_svc:-} ]] || kill "$podman_svc" 2>/dev/null || true
	[[ -z ${canned_svc:-} ]] || kill "$canned_svc" 2>/dev/null || true
}

as_user burrow import "$work/busybox.tar" localhost/busybox-bench >/dev/null
sock=$work/run/burrow-api.sock
as_user burrow system service --time 0 "unix://$sock" &
burrow_svc=$!
podman_args=()
if pick_podman "$work/busybox.tar" localhost/busybox-bench; then
	psock=$work/run/podman-api.sock
	as_user "${podman[@]}" system service --time 0 "unix://$psock" &
	podman_svc=$!
	podman_args=(--command-name "docker run --rm, podman system service"
		"$docker -H unix://$psock run --rm localhost/busybox-bench /bin/true")
else
	warn "SKIPPING podman"
fi
for _ in $(seq 50); do
	[[ -S $sock && (-z ${psock:-} || -S $psock) ]] && break
	sleep 0.1
done

say "docker run --rm through the API vs burrow run --rm, $runs runs each"
as_user hyperfine --shell=none --style basic --runs "$runs" --warmup "$warmup" \
	--export-json "$work/results/api-run.json" \
	--command-name "burrow run --rm" "burrow run --rm localhost/busybox-bench /bin/true" \
	--command-name "docker run --rm, burrow system service" \
	"$docker -H unix://$sock run --rm localhost/busybox-bench /bin/true" \
	"${podman_args[@]}"
cp "$work/results/api-run.json" "$out_dir/"
summary meta "$out_dir/api-run.json" "network=default"

say "filling the store: $containers containers"
cat >"$work/bin/fill" <<'SH'
#!/bin/sh
set -e
i=1
while [ "$i" -le "$2" ]; do
	burrow create --network none "$1" /bin/true >/dev/null
	i=$((i + 1))
done
SH
chmod 0755 "$work/bin/fill"
as_user fill localhost/busybox-bench "$containers"
# The docker CLI's own cost: the same list, answered at once by a stand-in
# that does no work, is the floor under any service's figure.
as_user curl -s --unix-socket "$sock" -o "$work/run/list.json" "http://burrow/v1.41/containers/json?all=1"
csock=$work/run/canned.sock
as_user python3 "$repo/bench/canned-api.py" "$csock" "$work/run/list.json" &
canned_svc=$!
for _ in $(seq 50); do
	[[ -S $csock ]] && break
	sleep 0.1
done
as_user hyperfine --shell=none --style basic --runs "$runs" --warmup "$warmup" \
	--export-json "$work/results/api-ps.json" \
	--command-name "docker ps -a through burrow ($containers containers)" \
	"$docker -H unix://$sock ps -a" \
	--command-name "docker ps -a against a canned answer (the CLI's floor)" \
	"$docker -H unix://$csock ps -a" \
	--command-name "burrow ps -a ($containers containers)" "burrow ps -a"
cp "$work/results/api-ps.json" "$out_dir/"
summary meta "$out_dir/api-ps.json" "containers=$containers"

{
	echo "## The Docker Engine API"
	echo
	echo "As $run_user, Debian's docker 20.10 CLI against \`burrow system service\`"
	echo "and \`podman system service\`; every run on the default network. Targets:"
	echo "docker run through burrow within 2x of burrow run and 10x faster than"
	echo "through podman; docker ps with $containers containers under 30 ms."
	echo
	summary table "$out_dir/api-run.json"
	echo
	summary table "$out_dir/api-ps.json"
} >"$out_dir/api.md"
cat "$out_dir/api.md"
echo "results: $out_dir" >&2
