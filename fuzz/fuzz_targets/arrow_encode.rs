//! The `arrow_encode` fuzz target: see `tollgate_tests::fuzzing`.
#![no_main]

use tollgate_tests::fuzzing::Target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| Target::ArrowEncode.run(data));
