//! burrow library: everything the `burrow` binary does, split by the data flow
//! reference → image store → container record → sandbox process.
//!
//! Dependencies point one way: `cli` uses everything; `engine` holds each
//! operation's rules for every front end; `build` drives
//! `container` and `image` from a Dockerfile; `container` uses `image`
//! and `store`; `sandbox` uses `linux`; `store` uses only `linux`; `linux`
//! knows nothing of images or the CLI.

pub mod api;
pub mod build;
pub mod cli;
pub mod container;
pub mod engine;
pub mod exit;
pub mod image;
pub mod linux;
pub mod monitor;
pub mod network;
pub mod runtime;
pub mod sandbox;
pub mod store;
pub mod util;
