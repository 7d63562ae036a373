//! Registry documents: manifests, indexes (with each content type burrow
//! knows) and image configs parse or fail, never panic.
#![no_main]

use burrow::image::config::ImageRuntimeConfig;
use burrow::image::manifest;
use libfuzzer_sys::fuzz_target;

const TYPES: [Option<&str>; 5] = [
    None,
    Some("application/vnd.oci.image.manifest.v1+json"),
    Some("application/vnd.oci.image.index.v1+json"),
    Some("application/vnd.docker.distribution.manifest.v2+json"),
    Some("application/vnd.docker.distribution.manifest.list.v2+json"),
];

fuzz_target!(|data: &[u8]| {
    for t in TYPES {
        if let Ok(manifest::Document::Index(idx)) = manifest::parse(data, t) {
            let _ = manifest::select(&idx, &manifest::Platform::host());
        }
    }
    if let Ok(c) = serde_json::from_slice::<oci_spec::image::ImageConfiguration>(data) {
        if let Some(rc) = c.config().as_ref().map(ImageRuntimeConfig::from_oci) {
            serde_json::to_vec(&rc).expect("the runtime config serializes");
        }
    }
});
