#!/usr/bin/env bash
# Runs burrow's whole test suite: installs the Debian packages the tests use
# (when root, or through sudo), then `cargo test`. The integration tests drop
# to unprivileged test users themselves when run as root; as an ordinary
# user they run as that user and say which cases they cannot cover.
set -euo pipefail
cd "$(dirname "$0")/.."

# uidmap: newuidmap/newgidmap for the subuid-range user; busybox-static and
# zstd: rootfs-tools/busybox.sh builds the test images with them; tmux: the
# interactive-terminal test drives `run -it` through it; mmdebstrap: the
# Debian image test builds a real distribution rootfs with rootfs-tools;
# dbus-daemon: the D-Bus client test talks to a real bus; docker-registry,
# skopeo and apache2-utils (htpasswd): the registry tests run real registries
# on loopback and copy fixtures into them; podman and skopeo: the archive
# tests make docker-archive and OCI fixtures with them and read what
# `burrow save` writes; gcc and libc6-dev: the seccomp tests compile a
# static probe program; passt (pasta), slirp4netns, curl and iproute2: the
# network tests reach published ports and give containers outbound access
# to a server in a network namespace the test creates; python3: the network
# tests run the host's python3 in containers as a UDP echo server and as a
# name-resolving client on user networks; podman also drives `burrow-runc`
# through conmon in the runtime-mode tests; catatonit: the static init
# `--init` execs (the escape tests check PID 1 holds nothing of burrow).
# bindfs: the FUSE-store test puts a store on a FUSE file system, where
# overlayfs cannot be mounted from a user namespace; fuse-overlayfs: what
# containers get there instead of a copy. nftables: the keeper masquerades
# the default network's bridge with nft (iptables where nft is missing).
# docker.io (the docker 20.10 CLI), docker-compose (1.29) and
# python3-docker (docker-py 5): the API tests (tests/api/) drive
# `burrow system service` with the real clients; python3-venv: they
# install docker-py 7 and testcontainers-python 4 from PyPI into a venv.
# docker.io also brings dockerd and containerd: they are installed without
# being started (policy-rc.d below), and no test starts the system's
# services. tests/containerd.rs runs its own rootless containerd under
# rootlesskit as a test user; tests/slurm.rs its own munged, slurmctld and
# slurmd on a private configuration, key and ports.
packages=(uidmap nftables busybox-static zstd tmux mmdebstrap dbus-daemon docker-registry skopeo apache2-utils podman runc crun containerd rootlesskit slurmctld slurmd slurm-client munge gcc libc6-dev passt slirp4netns curl iproute2 python3 catatonit bindfs fuse-overlayfs docker.io docker-compose python3-docker python3-venv)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# Installing a package must not start its services (docker.io's dockerd and
# containerd): invoke-rc.d asks /usr/sbin/policy-rc.d, and 101 means
# "forbidden". The host's own policy (or none) is put back afterwards.
install_missing() { # [sudo]
	local policy=/usr/sbin/policy-rc.d saved=
	if [[ -e $policy ]]; then
		saved=$(mktemp)
		$1 cp -p "$policy" "$saved"
	fi
	printf '#!/bin/sh\nexit 101\n' | $1 tee "$policy" >/dev/null
	$1 chmod 0755 "$policy"
	local st=0
	$1 apt-get update -qq &&
		$1 env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
		st=$?
	if [[ -n $saved ]]; then
		$1 cp -p "$saved" "$policy"
		$1 rm -f "$saved"
	else
		$1 rm -f "$policy"
	fi
	return "$st"
}
if ((${#missing[@]})); then
	if [[ $(id -u) -eq 0 ]]; then
		install_missing ""
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
		install_missing sudo
	else
		echo "tests/run.sh: missing Debian packages: ${missing[*]}" >&2
		echo "install them with: sudo apt-get install ${missing[*]}" >&2
		exit 1
	fi
fi

cargo test --locked "$@"
