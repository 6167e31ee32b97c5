#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orquesta::fuzz::event_json(data));
