// Contract checks of the certificate store's parsing and verification entry points, shared
// by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`) and the corpus replay test
// (`services/certificate-store/tests/fuzz_corpus.rs`), which both `include!` this file
// inside a module, so that the fuzzer and CI assert exactly the same rules.
//
// The includer must depend on: certificate-store, pmp-common, pmp-dev-certs, openssl, chrono,
// base64.
// Every check panics (assert!) on a violation, which libFuzzer reports as a crash.
//
// Rules checked for every input:
// - no panic; parsing, keys and verdicts are deterministic;
// - every error carries a contract reason (KER-PCM-001 / KER-KMS-013 for parsing and
//   verification, the rule's KER-PCM-0xx / KER-PMS-020 / KER-KMS-021 for validation),
//   never PMS_INTERNAL;
// - after every call the thread's OpenSSL error queue is empty;
// - parse_chain = parse_ca_bundle, limited to MAX_CHAIN_CERTIFICATES (KER-PCM-001 above);
// - chain_key is a function of the domain and the exact text, so the verdict cache (looked
//   up by key before parsing) never answers one request with another's verdict;
// - evaluate fails exactly when parse_chain does, with the same reason; a trusted verdict
//   starts with the leaf;
// - whatever parses: its facts are readable, CA and partner validation give contract
//   reasons, order_bundle is a permutation with roots first, and a partner certificate
//   that passes the local rules can be re-signed into a certificate that parses again.

use std::fmt::Debug;
use std::sync::LazyLock;

use pmp_common::error::ServiceError;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use certificate_store::domain::{StoredTrustEntry, TrustData, TrustPolicy};
use certificate_store::trust::{TrustSettings, TrustSnapshot};
use certificate_store::x509::{
    self, CertError, CertificateFacts, ErrorClass, PlatformSigner, TrustMaterial, ValidationPolicy,
};
use chrono::{DateTime, Utc};
use openssl::x509::X509;
use pmp_dev_certs::{CertificateSpec, DevPki, KeySpec};

/// Organisation of the generated PKI (subject O of its partner certificates).
pub const ORGANISATION: &str = "Fuzz Org";
/// Domain verified under the `registered` policy.
pub const DOMAIN: &str = "FTM";
/// Domain verified under the `chain` policy (same CA certificates).
pub const CHAIN_DOMAIN: &str = "AUTH";
/// Reasons a parse or verification error may carry.
pub const PARSE_REASONS: &[&str] = &["KER-PCM-001", "KER-KMS-013"];
/// Reasons an upload validation error may carry.
pub const VALIDATION_REASONS: &[&str] = &[
    "KER-KMS-013",
    "KER-KMS-021",
    "KER-PCM-004",
    "KER-PCM-005",
    "KER-PCM-006",
    "KER-PCM-007",
    "KER-PCM-008",
    "KER-PCM-013",
    "KER-PCM-014",
    "KER-PCM-015",
    "KER-PCM-017",
    "KER-PCM-019",
    "KER-PMS-020",
];

/// What the checks verify against, generated once per process.
pub struct Fixture {
    /// Root, intermediate, partner (trusted in `FTM`) and chip (stored untrusted).
    pub pki: DevPki,
    /// The PKI's root and intermediate.
    pub trust: TrustMaterial,
    /// `FTM` (registered policy) and `AUTH` (chain policy), both with the PKI's CAs.
    pub snapshot: TrustSnapshot,
    /// A fast (EC P-256) platform signer.
    pub signer: PlatformSigner,
    pub policy: ValidationPolicy,
    pub now: DateTime<Utc>,
}

pub static FIXTURE: LazyLock<Fixture> = LazyLock::new(build_fixture);

fn build_fixture() -> Fixture {
    let pki = DevPki::generate(ORGANISATION).expect("dev PKI");
    let signer = CertificateSpec::ca("Fuzz Platform Signing CA")
        .organisation("Fuzz Platform")
        .key(KeySpec::EcP256)
        .self_signed()
        .expect("platform signer");
    let key = pmp_common::signing::InMemoryKey::new(signer.private_key, "fuzz platform key")
        .expect("supported key");
    let signer =
        PlatformSigner::new(signer.certificate, std::sync::Arc::new(key)).expect("matching key");
    let trust = TrustMaterial::build(
        vec![pki.root.certificate.clone()],
        vec![pki.intermediate.certificate.clone()],
    )
    .expect("trust material");
    let identity = |cert: &X509| CertificateFacts::of(cert).expect("facts").identity;
    let mut data = TrustData {
        version: 1,
        ..TrustData::default()
    };
    for domain in [DOMAIN, CHAIN_DOMAIN] {
        for ca in [&pki.root, &pki.intermediate] {
            data.ca_certificates
                .push((domain.to_owned(), ca.pem().expect("CA PEM")));
        }
        data.stored_certificates.push(StoredTrustEntry {
            partner_domain: domain.to_owned(),
            identity: identity(&pki.ftm_chip.certificate),
            partner_id: "chip-provider".to_owned(),
            trusted: false,
            issuer_pem: None,
        });
    }
    data.stored_certificates.push(StoredTrustEntry {
        partner_domain: DOMAIN.to_owned(),
        identity: identity(&pki.partner.certificate),
        partner_id: "partner".to_owned(),
        trusted: true,
        issuer_pem: None,
    });
    let mut settings = TrustSettings::registered(&[DOMAIN, CHAIN_DOMAIN]);
    settings
        .policies
        .insert(CHAIN_DOMAIN.to_owned(), TrustPolicy::Chain);
    let snapshot = TrustSnapshot::build(&data, &settings).expect("trust snapshot");
    x509::clear_error_queue();
    Fixture {
        pki,
        trust,
        snapshot,
        signer,
        policy: ValidationPolicy::default(),
        now: Utc::now(),
    }
}

// ---------------------------------------------------------------------------------------
// Entry points of the fuzz targets.

/// `parse_upload`: the bytes as (lossy UTF-8) text through every upload parser.
pub fn check_upload_bytes(bytes: &[u8]) {
    check_upload(&String::from_utf8_lossy(bytes));
}

/// `verify_chain`: the bytes as text, as base64 (standard and URL-safe) and PEM-armoured
/// (certificate and PKCS#7) through `evaluate`; the PEM certificate form also through
/// the upload parsers (so mutated DER reaches validation and re-signing).
pub fn check_verify_bytes(bytes: &[u8]) {
    let certificate_pem = pem_armour("CERTIFICATE", bytes);
    for form in [
        String::from_utf8_lossy(bytes).into_owned(),
        STANDARD.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
        pem_armour("PKCS7", bytes),
    ] {
        check_verify(&form);
    }
    check_verify(&certificate_pem);
    check_upload(&certificate_pem);
}

// ---------------------------------------------------------------------------------------
// The checks.

/// Every rule of the upload parsers and `chain_key` for `data`.
pub fn check_upload(data: &str) {
    LazyLock::force(&FIXTURE);
    x509::clear_error_queue();

    let bundle = parsed("parse_ca_bundle", data, x509::parse_ca_bundle);
    let partner = parsed("parse_partner_certificate", data, |data| {
        x509::parse_partner_certificate(data).map(|cert| vec![cert])
    });
    let chain = parsed("parse_chain", data, x509::parse_chain);

    // parse_chain is parse_ca_bundle with a bound.
    match (&bundle, &chain) {
        (Ok(all), Ok(some)) => {
            assert!(some.len() <= x509::MAX_CHAIN_CERTIFICATES);
            assert_eq!(
                ders(all),
                ders(some),
                "parse_chain differs from parse_ca_bundle"
            );
        }
        (Ok(all), Err(error)) => assert!(
            all.len() > x509::MAX_CHAIN_CERTIFICATES
                && matches!(error, CertError::TooManyCertificates { .. }),
            "parse_chain refused {} certificates that parse_ca_bundle accepts: {error:?}",
            all.len()
        ),
        (Err(error), Ok(_)) => {
            panic!("parse_chain accepted what parse_ca_bundle refuses: {error:?}")
        }
        (Err(_), Err(_)) => {}
    }

    check_chain_key(data);

    if let Ok(certs) = &bundle {
        check_ca_bundle(certs);
    }
    if let Ok(certs) = &partner {
        check_partner(&certs[0]);
    }
}

/// `evaluate` of `data` in both domains, consistent with `parse_chain`.
pub fn check_verify(data: &str) {
    let fixture = &*FIXTURE;
    x509::clear_error_queue();
    let chain = x509::parse_chain(data);
    assert_queue_empty("parse_chain");
    check_chain_key(data);
    for domain in [DOMAIN, CHAIN_DOMAIN] {
        let evaluate = || {
            fixture
                .snapshot
                .evaluate(domain, data, fixture.now)
                .map_err(certificate_store::error::StoreError::from)
        };
        let first = evaluate();
        assert_queue_empty("evaluate");
        let again = evaluate();
        assert_queue_empty("evaluate");
        let summary = |outcome: &Result<_, certificate_store::error::StoreError>| match outcome {
            Ok((verdict, until)) => Ok((Clone::clone(verdict), *until)),
            Err(error) => Err((ServiceError::reason(error), error.to_string())),
        };
        assert_eq!(
            summary(&first),
            summary(&again),
            "evaluate is not deterministic"
        );
        match (&first, &chain) {
            (Err(error), Err(parse_error)) => {
                assert_reason("evaluate", &ServiceError::reason(error), PARSE_REASONS, error);
                assert_eq!(
                    ServiceError::reason(error),
                    parse_error.reason(),
                    "evaluate and parse_chain refuse with different reasons"
                );
            }
            (Err(error), Ok(_)) => panic!("evaluate failed on a parsable chain: {error:?}"),
            (Ok(_), Err(error)) => panic!("evaluate accepted an unparsable chain: {error:?}"),
            (Ok((verdict, until)), Ok(certs)) => {
                if verdict.trusted {
                    assert!(verdict.reason.is_empty());
                    let leaf = verdict
                        .chain_pem
                        .first()
                        .expect("trusted verdict has a path");
                    let leaf = X509::from_pem(leaf.as_bytes()).expect("path PEM parses");
                    assert_eq!(
                        der(&leaf),
                        der(&certs[0]),
                        "path does not start at the leaf"
                    );
                    assert!(*until > fixture.now, "trusted verdict already expired");
                } else {
                    assert!(verdict.chain_pem.is_empty());
                    assert!(
                        !verdict.reason.is_empty(),
                        "untrusted verdict without reason"
                    );
                    assert!(*until > fixture.now);
                }
            }
        }
    }
    let unknown = fixture
        .snapshot
        .evaluate("NO-SUCH-DOMAIN", data, fixture.now)
        .map_err(certificate_store::error::StoreError::from);
    assert_queue_empty("evaluate");
    assert!(
        matches!(
            unknown,
            Err(certificate_store::error::StoreError::InvalidDomain)
        ),
        "unknown domain: {unknown:?}"
    );
}

/// Runs a parser twice: same outcome, contract reasons only, empty error queue.
fn parsed(
    what: &str,
    data: &str,
    parse: impl Fn(&str) -> Result<Vec<X509>, CertError>,
) -> Result<Vec<X509>, CertError> {
    let first = parse(data);
    assert_queue_empty(what);
    let again = parse(data);
    assert_queue_empty(what);
    assert_eq!(
        outcome(&first),
        outcome(&again),
        "{what} is not deterministic"
    );
    match &first {
        Ok(certs) => assert!(!certs.is_empty(), "{what} returned no certificate"),
        Err(error) => {
            assert_reason(what, error.reason(), PARSE_REASONS, error);
            assert_eq!(
                error.class(),
                ErrorClass::InvalidArgument,
                "{what}: {error:?}"
            );
        }
    }
    first
}

/// The key rules: deterministic, and a function of the domain and the exact text. The
/// verdict cache is looked up by key before parsing, so two requests share a verdict only
/// when they are the same request (no form of the certificates can borrow another form's
/// verdict, whatever the parser thinks of either).
fn check_chain_key(data: &str) {
    let key = x509::chain_key(DOMAIN, data);
    assert_queue_empty("chain_key");
    assert_eq!(
        key,
        x509::chain_key(DOMAIN, data),
        "chain_key is not deterministic"
    );
    assert_ne!(
        key,
        x509::chain_key(CHAIN_DOMAIN, data),
        "chain_key ignores the domain"
    );
    assert_ne!(
        key,
        x509::chain_key(DOMAIN, &format!("{data} ")),
        "chain_key ignores part of the text"
    );
}

/// What a CA upload does with parsed certificates, minus storage.
fn check_ca_bundle(certs: &[X509]) {
    let fixture = &*FIXTURE;
    for cert in certs {
        check_facts(cert);
        let validation = x509::validate_ca_certificate(cert, fixture.now, &fixture.policy);
        assert_queue_empty("validate_ca_certificate");
        if let Err(error) = &validation {
            assert_reason(
                "validate_ca_certificate",
                error.reason(),
                VALIDATION_REASONS,
                error,
            );
        }
    }
    let ordered = x509::order_bundle(certs.to_vec());
    assert_queue_empty("order_bundle");
    let mut before = ders(certs);
    let mut after = ders(&ordered);
    let roots = ordered
        .iter()
        .take_while(|c| x509::is_self_signed(c))
        .count();
    assert_eq!(
        roots,
        ordered.iter().filter(|c| x509::is_self_signed(c)).count(),
        "order_bundle does not put roots first"
    );
    before.sort();
    after.sort();
    assert_eq!(before, after, "order_bundle is not a permutation");
    for (i, cert) in ordered.iter().enumerate().skip(roots) {
        let _ = x509::chain_to_domain_root(
            cert,
            fixture.trust.roots(),
            fixture.trust.intermediates(),
            &ordered[..i],
            Some(fixture.now),
        );
        assert_queue_empty("chain_to_domain_root");
    }
}

/// What a partner upload does with a parsed certificate, minus storage.
fn check_partner(cert: &X509) {
    let fixture = &*FIXTURE;
    check_facts(cert);
    let upload = x509::validate_partner_upload(
        cert,
        ORGANISATION,
        &fixture.trust,
        fixture.now,
        &fixture.policy,
    );
    assert_queue_empty("validate_partner_upload");
    if let Err(error) = &upload {
        assert_reason(
            "validate_partner_upload",
            error.reason(),
            VALIDATION_REASONS,
            error,
        );
    }
    let local = x509::validate_partner_certificate(cert, fixture.now, &fixture.policy);
    assert_queue_empty("validate_partner_certificate");
    if local.is_ok() {
        let copy = fixture.signer.resign(cert);
        assert_queue_empty("resign");
        let copy = match copy {
            Ok(copy) => copy,
            Err(error) => {
                panic!("resign failed for a certificate that passed the rules: {error:?}")
            }
        };
        let pem = x509::pem_string(&copy).expect("PEM of the re-signed copy");
        let again = x509::parse_partner_certificate(&pem);
        assert_queue_empty("parse_partner_certificate");
        if let Err(error) = again {
            panic!("the re-signed copy does not parse: {error:?}");
        }
    }
}

fn check_facts(cert: &X509) {
    let facts = CertificateFacts::of(cert);
    assert_queue_empty("CertificateFacts::of");
    if let Err(error) = facts {
        panic!("facts of a parsed certificate are unreadable: {error:?}");
    }
    let _ = (x509::is_ca(cert), x509::is_self_signed(cert));
    assert_queue_empty("is_ca/is_self_signed");
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn assert_queue_empty(what: &str) {
    let stack = openssl::error::ErrorStack::get();
    assert!(
        stack.errors().is_empty(),
        "{what} left errors on the thread's OpenSSL error queue: {stack:?}"
    );
}

fn assert_reason(what: &str, reason: &str, allowed: &[&str], error: &dyn Debug) {
    assert_ne!(
        reason, "PMS_INTERNAL",
        "{what} gave an internal error: {error:?}"
    );
    assert!(
        allowed.contains(&reason),
        "{what} gave reason {reason}, not one of {allowed:?}: {error:?}"
    );
}

fn outcome(result: &Result<Vec<X509>, CertError>) -> Result<Vec<Vec<u8>>, CertError> {
    result
        .as_ref()
        .map(|certs| ders(certs))
        .map_err(Clone::clone)
}

pub fn der(cert: &X509) -> Vec<u8> {
    cert.to_der().expect("DER of a parsed certificate")
}

pub fn ders(certs: &[X509]) -> Vec<Vec<u8>> {
    certs.iter().map(der).collect()
}

/// `bytes` as base64 in PEM armour with `label`, 64 characters a line.
pub fn pem_armour(label: &str, bytes: &[u8]) -> String {
    let body = STANDARD.encode(bytes);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Concatenated PEM certificates.
pub fn pem_of(ders: &[Vec<u8>]) -> String {
    ders.iter()
        .map(|der| pem_armour("CERTIFICATE", der))
        .collect()
}
