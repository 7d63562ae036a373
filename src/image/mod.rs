//! Images: reference parsing, image config and `--change` edits, archive
//! decoding, safe layer extraction and the built-in `hello-world` image.

pub mod add;
pub mod archive;
pub mod blob;
pub mod catalog;
pub mod change;
pub mod changes;
pub mod check;
pub mod commit;
pub mod compress;
pub mod config;
pub mod gc;
pub mod hello;
pub mod history;
pub mod import;
pub mod layer;
pub mod layer_tar;
pub mod manifest;
pub mod merged;
pub mod progress;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod usage;
