#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| llmrpc::fuzzing::surfaces(data));
