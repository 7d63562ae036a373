#!/usr/bin/env bash
# Pull throughput, side by side: `burrow pull` (download, verify, decompress
# and extract every layer into a fresh store) against `skopeo copy` to a
# directory (download and verify only), and against that copy followed by
# `tar -xzf` of each layer (the same work as burrow), from the same registry
# on loopback, in one hyperfine run. Prints medians, MB/s and the ratios.
#
# The image: a busybox base plus layers made of the host's /usr/lib (real
# files, gzip as registries serve them), about SIZE_MB uncompressed. Run it
# as root (as on the project's machines): it installs what is missing from
# Debian, runs both tools as the unprivileged user burrow-bench (with a
# subordinate id range), and empties burrow's store between runs.
#
# Results (hyperfine JSON, pull.md) go to OUT_DIR (default
# target/bench/pull-<date-time>).
#
# Environment: RUNS (10), WARMUP (2), SIZE_MB (200), QUICK=1 (RUNS=3
# WARMUP=1 SIZE_MB=20 unless set), KEEP, OUT_DIR, BURROW_BIN,
# CARGO_TARGET_DIR.
set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
out_dir=${OUT_DIR:-$target_dir/bench/pull-$(date +%Y%m%d-%H%M%S)}

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
runs=$(knob RUNS 10 3)
warmup=$(knob WARMUP 2 1)
size_mb=$(knob SIZE_MB 200 20)

if [[ $EUID -ne 0 ]]; then
	warn "run as root: the store holds files of subordinate ids, which only root removes between runs"
	exit 1
fi
need_packages docker-registry:docker-registry skopeo:skopeo hyperfine:hyperfine newuidmap:uidmap /bin/busybox:busybox-static

burrow_release

run_user=$(bench_user)

work=$(mktemp -d /tmp/burrow-pullbench.XXXXXX)
chmod 0755 "$work"
registry_pid=
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	[[ -n $registry_pid ]] && kill "$registry_pid" 2>/dev/null
	if [[ -n ${KEEP:-} ]]; then
		warn "kept $work"
		return
	fi
	rm -rf "$work" || warn "could not remove all of $work"
}
trap cleanup EXIT
mkdir -p "$work/bin" "$work/home" "$work/run" "$work/store" "$work/regdata" "$work/layers"
install -m 0755 "$burrow_bin" "$work/bin/burrow"
chown -R "$run_user:" "$work/home" "$work/run" "$work/store"
chmod 0700 "$work/run"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/regdata
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.1
done
reg=127.0.0.1:$port

say "building a ${size_mb} MB image and pushing it to $reg"
"$repo/rootfs-tools/busybox.sh" "$work/busybox.tar" >/dev/null
chmod a+r "$work/busybox.tar"
# Four layers of real files from /usr/lib, each about a quarter of SIZE_MB.
per=$((size_mb * 1024 / 4))
mapfile -t files < <(cd / && find usr/lib -type f -size -8M -readable 2>/dev/null | sort)
i=0 layer=0 acc=0
: >"$work/layers/list0"
for f in "${files[@]}"; do
	kb=$(($(stat -c %s "/$f") / 1024 + 1))
	echo "$f" >>"$work/layers/list$layer"
	acc=$((acc + kb))
	if ((acc >= per)); then
		layer=$((layer + 1)) acc=0
		((layer == 4)) && break
		: >"$work/layers/list$layer"
	fi
	i=$((i + 1))
done
for l in 0 1 2 3; do
	[[ -s $work/layers/list$l ]] || continue
	tar --numeric-owner --owner=0 --group=0 -C / -czf "$work/layers/l$l.tar.gz" -T "$work/layers/list$l"
	chmod a+r "$work/layers/l$l.tar.gz"
done
# The layers become an OCI layout, which skopeo pushes.
python3 - "$work" <<'PY'
import hashlib, json, os, sys, gzip
work = sys.argv[1]
lay = os.path.join(work, "oci")
os.makedirs(os.path.join(lay, "blobs", "sha256"), exist_ok=True)
open(os.path.join(lay, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
def blob(b):
    d = hashlib.sha256(b).hexdigest()
    open(os.path.join(lay, "blobs", "sha256", d), "wb").write(b)
    return "sha256:" + d, len(b)
layers, diffs = [], []
base = open(os.path.join(work, "busybox.tar"), "rb").read()
gz = [gzip.compress(base, 6)] + [open(os.path.join(work, "layers", f"l{i}.tar.gz"), "rb").read()
      for i in range(4) if os.path.exists(os.path.join(work, "layers", f"l{i}.tar.gz"))]
for g in gz:
    d, n = blob(g)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n})
    diffs.append("sha256:" + hashlib.sha256(gzip.decompress(g)).hexdigest())
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
cd, cn = blob(cfg)
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
                "layers": layers}).encode()
md, mn = blob(m)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": md, "size": mn, "annotations": {"org.opencontainers.image.ref.name": "bench"}}]},
          open(os.path.join(lay, "index.json"), "w"))
PY
skopeo copy --quiet --dest-tls-verify=false "oci:$work/oci:bench" "docker://$reg/bench:1"
compressed=$(du -sb "$work/oci/blobs" | cut -f1)
say "image: $((compressed / 1024 / 1024)) MB compressed; $runs runs each, as $run_user"

# One command line each for hyperfine, with no shell in between.
# "skopeo+tar" is what a usable root filesystem costs with skopeo: the copy,
# then each layer extracted in order (burrow's pull does both).
cat >"$work/bin/unpack-dir" <<'SH'
#!/usr/bin/env bash
set -euo pipefail
dir=$1 out=$2
mkdir -p "$out"
python3 -c 'import json,sys; [print(l["digest"].split(":")[1]) for l in json.load(open(sys.argv[1]))["layers"]]' "$dir/manifest.json" |
	while read -r hex; do tar -xzf "$dir/$hex" -C "$out"; done
SH
chmod 0755 "$work/bin/unpack-dir"
for tool in burrow skopeo skopeo-tar; do
	{
		echo '#!/usr/bin/env bash'
		declare -f as_user
		echo "work=$work run_user=$run_user"
		case $tool in
		burrow) echo "as_user burrow pull -q $reg/bench:1 >/dev/null" ;;
		skopeo) echo "as_user skopeo copy --quiet --src-tls-verify=false docker://$reg/bench:1 dir:$work/run/skopeo-dir" ;;
		skopeo-tar)
			echo "as_user skopeo copy --quiet --src-tls-verify=false docker://$reg/bench:1 dir:$work/run/skopeo-dir"
			echo "as_user unpack-dir $work/run/skopeo-dir $work/run/skopeo-rootfs"
			;;
		esac
	} >"$work/bin/pull-$tool"
	chmod 0755 "$work/bin/pull-$tool"
done
# Each run starts from nothing: an empty store, an absent directory.
"$work/bin/pull-burrow"
"$work/bin/pull-skopeo"
rm -rf "$work/run/skopeo-dir"
"$work/bin/pull-skopeo-tar"
hyperfine --style basic --shell=none --runs "$runs" --warmup "$warmup" --export-json "$work/pull.json" \
	--command-name "burrow pull" --prepare "rm -rf $work/store/blobs $work/store/layers $work/store/images $work/store/repositories.json" \
	"$work/bin/pull-burrow" \
	--command-name "skopeo copy dir:" --prepare "rm -rf $work/run/skopeo-dir" \
	"$work/bin/pull-skopeo" \
	--command-name "skopeo copy + tar -x" --prepare "rm -rf $work/run/skopeo-dir $work/run/skopeo-rootfs" \
	"$work/bin/pull-skopeo-tar"

python3 - "$work/pull.json" "$compressed" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
mb = int(sys.argv[2]) / 1e6
med = {r["command"]: r["median"] for r in res}
print()
print(f"{'':20} {'median':>10} {'MB/s':>8}")
for name, t in med.items():
    print(f"{name:20} {t*1000:8.0f} ms {mb/t:8.1f}")
b = med["burrow pull"]
print(f"\nburrow pull / skopeo copy = {b/med['skopeo copy dir:']:.2f} (below 1 means burrow is faster)")
print(f"burrow pull / (skopeo copy + tar -x) = {b/med['skopeo copy + tar -x']:.2f}")
PY

mkdir -p "$out_dir"
cp "$work/pull.json" "$out_dir/"
summary meta "$out_dir/pull.json" "bytes=$compressed" "size_mb=$size_mb"
{
	echo "## Pull from a registry on loopback"
	echo
	echo "As $run_user: an image of $((compressed / 1000000)) MB compressed (about $size_mb MB of"
	echo "files: busybox and four gzip layers from /usr/lib) from Debian's"
	echo "docker-registry. MB/s counts the compressed bytes. skopeo copy dir: only"
	echo "downloads and verifies; burrow pull also extracts, as skopeo + tar -x does."
	echo
	summary table "$out_dir/pull.json" --ref "skopeo copy dir:" --ref "skopeo copy + tar -x"
} >"$out_dir/pull.md"
echo "results: $out_dir" >&2
