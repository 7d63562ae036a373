//! burrow on the kinds of hosts its users meet, each made by the test
//! itself (as root, in a mount namespace created for one command) rather
//! than inherited: a tun device only root may open or none at all, no
//! network helper, no login session's runtime directory, no subordinate
//! range, a store where overlayfs cannot be mounted.

#![allow(dead_code)]

#[path = "../common/mod.rs"]
mod common;

mod fakeroot;
mod fuse_store;
mod keep_id;
mod network;
mod runtime_dir;
