#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_fuzz_targets::x_forwarded_for(data));
