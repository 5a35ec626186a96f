//! The bytes of an upload, as (lossy UTF-8) text, through `parse_ca_bundle`,
//! `parse_partner_certificate`, `parse_chain` and `chain_key`, and whatever parses through
//! the CA and partner upload rules and re-signing (see `../checks.rs` for every rule).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
mod checks {
    include!("../checks.rs");
}

fuzz_target!(|data: &[u8]| {
    checks::check_upload_bytes(data);
});
