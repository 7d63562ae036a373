//! `--change` instructions: parsing and applying never panics, and a
//! change that applies leaves a config that serializes.
#![no_main]

use burrow::image::change::apply_change;
use burrow::image::config::ImageRuntimeConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let mut cfg = ImageRuntimeConfig::default();
    for line in s.split('\0') {
        let _ = apply_change(&mut cfg, line);
    }
    serde_json::to_vec(&cfg).expect("the config serializes");
});
