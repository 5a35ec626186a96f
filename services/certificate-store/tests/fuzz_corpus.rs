//! Replays the cargo-fuzz corpus (`fuzz/corpus/<target>/`) and the crash reproducers
//! (`fuzz/regressions/<target>/`) through the same contract checks as the fuzz targets
//! (`fuzz/checks.rs`, included here), so that CI keeps every input the fuzzer found
//! interesting passing without a nightly toolchain. See `fuzz/README.md`.
//!
//! `cargo test -p certificate-store --test fuzz_corpus -- --ignored write_seed_corpus`
//! (re)writes the generated seed inputs of both targets.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

#[allow(dead_code)]
mod checks {
    include!("../../../fuzz/checks.rs");
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Every regular file under `dir` (recursively), sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.file_name().is_some_and(|name| name != ".gitkeep") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Runs `check` on every file of the target's corpus and regressions; fails listing every
/// file that violated a rule (each violation's message is printed as it happens).
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = fuzz_dir();
    let inputs: Vec<PathBuf> = files(&dir.join("corpus").join(target))
        .into_iter()
        .chain(files(&dir.join("regressions").join(target)))
        .collect();
    let mut failed = Vec::new();
    for path in &inputs {
        let data = std::fs::read(path).expect("read corpus file");
        if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} inputs of {target} violate the contract:\n{}",
        failed.len(),
        inputs.len(),
        failed.join("\n")
    );
    inputs.len()
}

#[test]
fn parse_upload_corpus_passes_the_checks() {
    let count = replay("parse_upload", checks::check_upload_bytes);
    assert!(count > 0, "the parse_upload corpus is missing");
}

#[test]
fn verify_chain_corpus_passes_the_checks() {
    let count = replay("verify_chain", checks::check_verify_bytes);
    assert!(count > 0, "the verify_chain corpus is missing");
}

/// Writes the generated seeds: certificates, bundles and chains of a fresh dev PKI in every
/// accepted form (PEM, CRLF PEM, PEM PKCS#7, base64 and URL-safe base64 P7B and DER) plus
/// one certificate per contract fault, as text for `parse_upload` and as DER for
/// `verify_chain`. Run before `cargo fuzz run`; `cargo fuzz cmin` replaces them later.
#[test]
#[ignore = "writes the fuzz seed corpus; run on demand"]
fn write_seed_corpus() {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use certificate_store::x509;
    use openssl::x509::X509;
    use pmp_dev_certs::{CertKind, CertificateSpec, DigestSpec, Issued, KeySpec, X509Version};

    let fixture = &*checks::FIXTURE;
    let pki = &fixture.pki;
    let leaf = |cn: &str| {
        CertificateSpec::leaf(cn)
            .organisation(checks::ORGANISATION)
            .valid_from_days(-1)
            .valid_for_days(730)
    };
    let issue = |spec: CertificateSpec| spec.issued_by(&pki.intermediate).expect("certificate");
    let faults: Vec<(&str, Issued)> = vec![
        ("v1", issue(leaf("v1").version(X509Version::V1))),
        ("sha1", issue(leaf("sha1").digest(DigestSpec::Sha1))),
        ("rsa1024", issue(leaf("rsa1024").key(KeySpec::Rsa(1024)))),
        ("ed25519", issue(leaf("ed25519").key(KeySpec::Ed25519))),
        ("rsapss", issue(leaf("rsapss").key(KeySpec::RsaPss(2048)))),
        (
            "expired",
            issue(leaf("expired").valid_from_days(-400).valid_for_days(30)),
        ),
        ("future", issue(leaf("future").valid_from_days(10))),
        ("short", issue(leaf("short").valid_for_days(30))),
        (
            "noconstraints",
            issue(leaf("nc").kind(CertKind::NoConstraints)),
        ),
        (
            "wrong-org",
            issue(CertificateSpec::leaf("other").organisation("Someone Else")),
        ),
        (
            "self-signed",
            leaf("self").self_signed().expect("self-signed"),
        ),
    ];
    let certificate = |issued: &Issued| issued.certificate.clone();
    let chain = vec![
        certificate(&pki.partner),
        certificate(&pki.intermediate),
        certificate(&pki.root),
    ];
    let chip_chain = vec![certificate(&pki.ftm_chip), certificate(&pki.intermediate)];
    let bundle = vec![certificate(&pki.root), certificate(&pki.intermediate)];
    let pem = |certs: &[X509]| checks::pem_of(&checks::ders(certs));
    let p7b = |certs: &[X509]| x509::certs_to_p7b_der(certs).expect("P7B");
    let eleven: Vec<X509> = (0..11).map(|_| certificate(&pki.partner)).collect();

    let mut text: Vec<(String, String)> = vec![
        ("partner-pem".into(), pem(&chain[..1])),
        ("chip-pem".into(), pem(&chip_chain[..1])),
        ("chain-pem".into(), pem(&chain)),
        ("chip-chain-pem".into(), pem(&chip_chain)),
        ("bundle-pem".into(), pem(&bundle)),
        ("bundle-crlf-pem".into(), pem(&bundle).replace('\n', "\r\n")),
        ("chain-p7b-url".into(), URL_SAFE_NO_PAD.encode(p7b(&chain))),
        ("bundle-p7b-std".into(), STANDARD.encode(p7b(&bundle))),
        (
            "chain-pem-pkcs7".into(),
            checks::pem_armour("PKCS7", &p7b(&chain)),
        ),
        (
            "partner-der-b64".into(),
            STANDARD.encode(checks::der(&chain[0])),
        ),
        (
            "trusted-pem".into(),
            checks::pem_armour("TRUSTED CERTIFICATE", &checks::der(&chain[0])),
        ),
        (
            "public-key-only".into(),
            checks::pem_armour("PUBLIC KEY", &[0x30, 0x03, 0x02, 0x01, 0x00]),
        ),
        ("eleven-pem".into(), pem(&eleven)),
    ];
    for (name, issued) in &faults {
        text.push((
            format!("{name}-pem"),
            pem(std::slice::from_ref(&issued.certificate)),
        ));
    }
    let mut binary: Vec<(String, Vec<u8>)> = vec![
        ("chain-p7b".into(), p7b(&chain)),
        ("chip-chain-p7b".into(), p7b(&chip_chain)),
        ("bundle-p7b".into(), p7b(&bundle)),
        ("chain-pem-text".into(), pem(&chain).into_bytes()),
    ];
    for (name, issued) in [
        ("root", &pki.root),
        ("intermediate", &pki.intermediate),
        ("partner", &pki.partner),
        ("chip", &pki.ftm_chip),
    ] {
        binary.push((format!("{name}-der"), issued.der().expect("DER")));
    }
    for (name, issued) in &faults {
        binary.push((format!("{name}-der"), issued.der().expect("DER")));
    }

    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
    };
    for (name, data) in &text {
        write("parse_upload", name, data.as_bytes());
    }
    for (name, data) in &binary {
        write("verify_chain", name, data);
    }
}
