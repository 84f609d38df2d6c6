//! `cargo fuzz run rtsp_camera`: see fuzz/README.md.
#![no_main]

#[allow(dead_code)] // each target uses one body
#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = bodies::rtsp_camera(data);
});
