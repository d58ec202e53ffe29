//! libFuzzer entry of the `product_stock_rpc` target; its body (and the invariants it
//! checks) is in the harness, `fuzz-harness/src/`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shopmesh_fuzz::product_stock_rpc(data);
});
