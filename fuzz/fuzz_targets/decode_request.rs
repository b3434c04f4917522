//! Fuzzes the request decoder: any input, decoded at once and in small
//! reads, must keep every invariant in `protocol::invariants` (no panic,
//! nothing consumed beyond the buffer, keys without whitespace or control
//! bytes, values of the announced length, same result however it arrives).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protocol::invariants::check_decoder(data);
});
