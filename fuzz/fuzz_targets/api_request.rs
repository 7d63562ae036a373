//! The API service's request reader on hostile bytes: heads, bodies by
//! length or chunked, several requests on one connection. It must answer
//! every input with a request or an error, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    burrow::api::http::read_all(data);
});
