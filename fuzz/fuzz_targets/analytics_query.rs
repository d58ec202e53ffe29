//! libFuzzer entry of the `analytics_query` target; its body (and the invariants it
//! checks) is in the harness, `fuzz-harness/src/`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shopmesh_fuzz::analytics_query(data);
});
