//! Layer application: any byte stream either applies or fails with an
//! error, never panics, and nothing appears outside the layer directory.
#![no_main]

use burrow::image::layer::{apply_layer, ApplyOptions, IdPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).expect("the layer dir");
    let opts = ApplyOptions {
        ids: IdPolicy::Collapse,
    };
    let _ = apply_layer(data, &dest, &opts);
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("listing the temp dir")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("dest")], "wrote outside the layer");
});
