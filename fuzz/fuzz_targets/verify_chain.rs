//! `TrustSnapshot::evaluate` (the trust decision of `VerifyCertificateTrust`) on the bytes as
//! text, as base64 DER (standard and URL-safe) and PEM-armoured (certificate, PKCS#7), in a
//! snapshot built once from a generated PKI; the PEM certificate form also goes through the
//! upload checks (see `../checks.rs` for every rule).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
mod checks {
    include!("../checks.rs");
}

fuzz_target!(|data: &[u8]| {
    checks::check_verify_bytes(data);
});
