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
# containers get there instead of a copy.
packages=(uidmap busybox-static zstd tmux mmdebstrap dbus-daemon docker-registry skopeo apache2-utils podman gcc libc6-dev passt slirp4netns curl iproute2 python3 catatonit bindfs fuse-overlayfs)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	if [[ $(id -u) -eq 0 ]]; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
		sudo apt-get update -qq
		sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	else
		echo "tests/run.sh: missing Debian packages: ${missing[*]}" >&2
		echo "install them with: sudo apt-get install ${missing[*]}" >&2
		exit 1
	fi
fi

cargo test --locked "$@"
