#![no_main]

use llmrpc::ProviderName;

libfuzzer_sys::fuzz_target!(|data: &[u8]| llmrpc::fuzzing::provider(ProviderName::Gemini, data));
