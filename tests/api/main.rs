//! The Docker Engine API served by `burrow system service`, driven by the
//! real clients as the unprivileged test users: Debian's docker 20.10 CLI,
//! docker-compose 1.29 and python3-docker 5, and docker-py 7 and
//! testcontainers-python 4 from PyPI. One service per test user on a
//! socket in a directory of its own; images come from the harness's busybox
//! tarball, loopback registries and local builds.

#[path = "../common/mod.rs"]
mod common;

mod compose;
mod docker_cli;
mod python;
mod support;
