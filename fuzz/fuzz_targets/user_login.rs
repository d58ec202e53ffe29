//! libFuzzer entry of the `user_login` target; its body (and the invariants it
//! checks) is in the harness, `fuzz-harness/src/`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shopmesh_fuzz::user_login(data);
});
