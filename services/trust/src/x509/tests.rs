//! Tests of the x509 module against certificates generated at test time by `pmp-dev-certs`.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use chrono::{Duration, Utc};
use openssl::hash::MessageDigest;
use openssl::pkcs7::Pkcs7;
use openssl::x509::{X509, X509KeyUsage};
use pmp_dev_certs::{CertKind, CertificateSpec, DevPki, DigestSpec, Issued, KeySpec, X509Version};

use super::*;

const ORG: &str = "Acme Chips";

/// One PKI for the whole test binary (RSA-3072 root generation is the slow part).
fn pki() -> &'static DevPki {
    static PKI: OnceLock<DevPki> = OnceLock::new();
    PKI.get_or_init(|| DevPki::generate(ORG).expect("dev PKI"))
}

/// A second, unrelated PKI.
fn foreign_pki() -> &'static DevPki {
    static PKI: OnceLock<DevPki> = OnceLock::new();
    PKI.get_or_init(|| DevPki::generate("Foreign Org").expect("foreign PKI"))
}

fn platform() -> &'static GeneratedPlatformPki {
    static PLATFORM: OnceLock<GeneratedPlatformPki> = OnceLock::new();
    PLATFORM.get_or_init(|| PlatformSigner::generate().expect("platform"))
}

fn trust() -> TrustMaterial {
    let pki = pki();
    TrustMaterial::build(
        vec![pki.root.certificate.clone()],
        vec![pki.intermediate.certificate.clone()],
    )
    .expect("trust")
}

/// A partner certificate spec with no fault.
fn good_leaf() -> CertificateSpec {
    CertificateSpec::leaf("partner")
        .organisation(ORG)
        .country("IN")
        .valid_from_days(-1)
        .valid_for_days(730)
}

/// A CA spec with no fault.
fn good_ca(cn: &str) -> CertificateSpec {
    CertificateSpec::ca(cn)
        .organisation(ORG)
        .key(KeySpec::EcP256)
        .valid_from_days(-1)
        .valid_for_days(1000)
}

fn issue(spec: CertificateSpec) -> Issued {
    spec.issued_by(&pki().intermediate).expect("issue")
}

fn pem(issued: &Issued) -> String {
    issued.pem().expect("pem")
}

fn der(cert: &X509) -> Vec<u8> {
    cert.to_der().expect("der")
}

fn ders(certs: &[X509]) -> Vec<Vec<u8>> {
    certs.iter().map(der).collect()
}

fn partner_reason(spec: CertificateSpec) -> &'static str {
    let leaf = issue(spec);
    validate_partner_upload(
        &leaf.certificate,
        ORG,
        &trust(),
        Utc::now(),
        &ValidationPolicy::default(),
    )
    .err()
    .map_or("OK", |e| e.reason())
}

fn ca_reason(cert: &X509) -> &'static str {
    validate_ca_certificate(cert, Utc::now(), &ValidationPolicy::default())
        .err()
        .map_or("OK", |e| e.reason())
}

fn pem_armour(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

// ---------------------------------------------------------------- parsing

#[test]
fn parses_single_pem() {
    let certs = parse_ca_bundle(&pem(&pki().root)).expect("parse");
    assert_eq!(ders(&certs), vec![der(&pki().root.certificate)]);
}

#[test]
fn parses_concatenated_pem_with_noise_and_crlf() {
    let data = format!(
        "\u{feff}subject=root\r\n{}\r\nsome text\n{}",
        pem(&pki().root).replace('\n', "\r\n"),
        pem(&pki().intermediate)
    );
    let certs = parse_ca_bundle(&data).expect("parse");
    assert_eq!(
        ders(&certs),
        vec![
            der(&pki().root.certificate),
            der(&pki().intermediate.certificate)
        ]
    );
}

#[test]
fn parses_pem_pkcs7() {
    let input = [
        pki().intermediate.certificate.clone(),
        pki().root.certificate.clone(),
    ];
    let p7b = certs_to_p7b_der(&input).expect("p7b");
    let certs = parse_ca_bundle(&pem_armour("PKCS7", &p7b)).expect("parse");
    assert_eq!(ders(&certs), ders(&input));
}

#[test]
fn parses_base64_pkcs7_in_every_alphabet_and_padding() {
    // Three bundles of different lengths so that padding occurs in at least one.
    let bundles = [
        vec![pki().root.certificate.clone()],
        vec![
            pki().root.certificate.clone(),
            pki().intermediate.certificate.clone(),
        ],
        vec![
            pki().partner.certificate.clone(),
            pki().intermediate.certificate.clone(),
            pki().root.certificate.clone(),
        ],
    ];
    let mut saw_padding = false;
    let mut saw_url_chars = false;
    for bundle in &bundles {
        let p7b = certs_to_p7b_der(bundle).expect("p7b");
        for encoded in [
            STANDARD.encode(&p7b),
            STANDARD_NO_PAD.encode(&p7b),
            URL_SAFE.encode(&p7b),
            URL_SAFE_NO_PAD.encode(&p7b),
        ] {
            saw_padding |= encoded.ends_with('=');
            saw_url_chars |= encoded.contains('-') || encoded.contains('_');
            let certs = parse_ca_bundle(&encoded).expect("parse");
            assert_eq!(ders(&certs), ders(bundle));
        }
        // Line-wrapped standard base64 too.
        let wrapped = pem_armour("X", &p7b)
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            ders(&parse_ca_bundle(&wrapped).expect("parse")),
            ders(bundle)
        );
    }
    assert!(saw_padding && saw_url_chars);
    let mosip_form = certs_to_p7b_base64url(&bundles[1]).expect("b64");
    assert!(!mosip_form.contains('='));
    assert_eq!(
        ders(&parse_ca_bundle(&mosip_form).expect("parse")),
        ders(&bundles[1])
    );
}

#[test]
fn parses_raw_base64_der_certificate() {
    let encoded = STANDARD.encode(der(&pki().root.certificate));
    let certs = parse_ca_bundle(&encoded).expect("parse");
    assert_eq!(ders(&certs), vec![der(&pki().root.certificate)]);
}

#[test]
fn blank_and_garbage_are_kerpcm001() {
    for blank in ["", "   ", "\n\t\r\n"] {
        assert_eq!(parse_ca_bundle(blank).err(), Some(CertError::Blank));
        assert_eq!(
            parse_partner_certificate(blank).err(),
            Some(CertError::Blank)
        );
    }
    for garbage in ["hello world", "not base64 !!!", "AAAA", "{\"cert\": 1}"] {
        let err = parse_ca_bundle(garbage).expect_err("garbage");
        assert_eq!(err, CertError::NotPemOrP7b, "{garbage}");
        assert_eq!(err.reason(), "KER-PCM-001");
        assert_eq!(
            parse_partner_certificate(garbage).err(),
            Some(CertError::NotPemOrP7b)
        );
    }
    // A valid PEM that holds no certificate.
    let key = pki().root.key_pem().expect("key");
    let err = parse_ca_bundle(&key).expect_err("key only");
    assert_eq!(err, CertError::NoCertificate);
    assert_eq!(err.reason(), "KER-PCM-001");
}

#[test]
fn armour_with_broken_content_is_kerkms013() {
    let cases = [
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_string(),
        "-----BEGIN CERTIFICATE-----\n!!!notbase64\n-----END CERTIFICATE-----\n".to_string(),
        "-----BEGIN CERTIFICATE-----\nMIIB".to_string(),
        "-----BEGIN PKCS7-----\nMIIBAAAA\n-----END PKCS7-----\n".to_string(),
        // A valid certificate followed by a truncated one.
        format!(
            "{}-----BEGIN CERTIFICATE-----\nMIIBIjAN\n-----END CERTIFICATE-----\n",
            pem(&pki().root)
        ),
        // Truncated DER inside a complete armour.
        pem_armour("CERTIFICATE", &der(&pki().root.certificate)[..200]),
    ];
    for case in &cases {
        let err = parse_ca_bundle(case).expect_err("broken");
        assert_eq!(err.reason(), "KER-KMS-013", "{case}: {err:?}");
        assert!(!err.message().contains(".c"), "{}", err.message());
    }
    let err = parse_partner_certificate(&cases[0]).expect_err("broken");
    assert_eq!(err.reason(), "KER-KMS-013");
}

#[test]
fn partner_parsing_wants_exactly_one_pem_certificate() {
    let cert = parse_partner_certificate(&pem(&pki().partner)).expect("parse");
    assert_eq!(der(&cert), der(&pki().partner.certificate));

    let two = format!("{}{}", pem(&pki().partner), pem(&pki().intermediate));
    assert_eq!(
        parse_partner_certificate(&two).err(),
        Some(CertError::ExpectedSingleCertificate { found: 2 })
    );
    // Raw base64 DER is not PEM.
    let raw = STANDARD.encode(der(&pki().partner.certificate));
    assert_eq!(
        parse_partner_certificate(&raw).err(),
        Some(CertError::NotPemOrP7b)
    );
}

#[test]
fn parse_chain_keeps_leaf_first() {
    let data = format!("{}{}", pem(&pki().partner), pem(&pki().intermediate));
    let chain = parse_chain(&data).expect("chain");
    assert_eq!(
        ders(&chain),
        vec![
            der(&pki().partner.certificate),
            der(&pki().intermediate.certificate)
        ]
    );
}

// ---------------------------------------------------------------- facts

#[test]
fn facts_of_partner_certificate() {
    let cert = &pki().partner.certificate;
    let facts = CertificateFacts::of(cert).expect("facts");
    let expected_thumbprint = hex::encode(cert.digest(MessageDigest::sha256()).expect("digest"));
    assert_eq!(facts.thumbprint, expected_thumbprint);
    assert_eq!(facts.thumbprint.len(), 64);
    assert_eq!(facts.thumbprint, facts.thumbprint.to_lowercase());
    assert_eq!(
        facts.subject,
        "CN=Acme Chips Partner,OU=Partner,O=Acme Chips,C=IN"
    );
    assert_eq!(
        facts.issuer,
        "CN=Acme Chips Dev Intermediate CA,O=Acme Chips,C=IN"
    );
    let serial = cert
        .serial_number()
        .to_bn()
        .expect("bn")
        .to_hex_str()
        .expect("hex")
        .to_string();
    assert_eq!(facts.serial_number, serial);
    assert_eq!(facts.serial_number, facts.serial_number.to_uppercase());
    assert!(!facts.serial_number.starts_with('-'));
    let now = Utc::now();
    assert!(
        (facts.not_before - (now - Duration::days(1)))
            .num_seconds()
            .abs()
            < 300
    );
    assert!(
        (facts.not_after - (now + Duration::days(729)))
            .num_seconds()
            .abs()
            < 300
    );
    assert_eq!(facts.version, 3);
    assert!(!facts.is_self_signed);
    assert!(!facts.is_ca);
    assert_eq!(facts.key_kind, KeyKind::Rsa);
    assert_eq!(facts.key_bits, 2048);
    assert_eq!(
        facts.signature_algorithm,
        openssl::nid::Nid::SHA256WITHRSAENCRYPTION
    );
    assert_eq!(facts.signature_algorithm_name, "sha256WithRSAEncryption");
    assert_eq!(facts.organisations, vec![ORG.to_string()]);
}

#[test]
fn facts_of_roots_cas_and_chips() {
    let root = CertificateFacts::of(&pki().root.certificate).expect("facts");
    assert!(root.is_self_signed && root.is_ca);
    assert_eq!(root.subject, root.issuer);
    let intermediate = CertificateFacts::of(&pki().intermediate.certificate).expect("facts");
    assert!(!intermediate.is_self_signed && intermediate.is_ca);
    let chip = CertificateFacts::of(&pki().ftm_chip.certificate).expect("facts");
    assert_eq!((chip.key_kind, chip.key_bits), (KeyKind::Ec, 256));

    let v1 = good_ca("v1")
        .version(X509Version::V1)
        .self_signed()
        .expect("v1");
    let v1 = CertificateFacts::of(&v1.certificate).expect("facts");
    assert_eq!(v1.version, 1);
    assert!(!v1.is_ca && v1.is_self_signed);

    let plain = good_ca("plain")
        .kind(CertKind::NoConstraints)
        .self_signed()
        .expect("plain");
    assert!(!is_ca(&plain.certificate));
}

#[test]
fn self_issued_but_foreign_signed_is_not_self_signed() {
    // Subject == issuer name, but signed by the root's key, not its own.
    let root = &pki().root;
    let mimic = CertificateSpec::ca(&format!("{ORG} Dev Root CA"))
        .organisation(ORG)
        .country("IN")
        .key(KeySpec::EcP256)
        .issued_by(root)
        .expect("mimic");
    let facts = CertificateFacts::of(&mimic.certificate).expect("facts");
    assert_eq!(facts.subject, facts.issuer);
    assert!(!facts.is_self_signed);
}

#[test]
fn names_are_escaped() {
    let odd = CertificateSpec::leaf("a,b+c")
        .organisation(" lead")
        .self_signed()
        .expect("odd");
    let facts = CertificateFacts::of(&odd.certificate).expect("facts");
    assert_eq!(facts.subject, "CN=a\\,b\\+c,O=\\ lead");
}

// ---------------------------------------------------------------- partner rules

#[test]
fn good_partner_certificate_is_accepted_with_chain() {
    let leaf = issue(good_leaf());
    let chain = validate_partner_upload(
        &leaf.certificate,
        ORG,
        &trust(),
        Utc::now(),
        &ValidationPolicy::default(),
    )
    .expect("accepted");
    assert_eq!(
        ders(&chain),
        vec![
            der(&leaf.certificate),
            der(&pki().intermediate.certificate),
            der(&pki().root.certificate)
        ]
    );
    assert_eq!(partner_reason(good_leaf()), "OK");
}

#[test]
fn strong_algorithms_are_accepted() {
    assert_eq!(partner_reason(good_leaf().digest(DigestSpec::Sha384)), "OK");
    assert_eq!(partner_reason(good_leaf().digest(DigestSpec::Sha512)), "OK");
    assert_eq!(partner_reason(good_leaf().key(KeySpec::EcP256)), "OK");
    assert_eq!(partner_reason(good_leaf().key(KeySpec::RsaPss(2048))), "OK");
    assert_eq!(partner_reason(good_leaf().key(KeySpec::Ed25519)), "OK");

    // ECDSA P-256 signatures (EC issuing CA), and RSA-PSS signatures with SHA-256.
    for (issuer_key, algorithm) in [
        (KeySpec::EcP256, openssl::nid::Nid::ECDSA_WITH_SHA256),
        (KeySpec::RsaPss(2048), openssl::nid::Nid::RSASSAPSS),
    ] {
        let ca = CertificateSpec::ca("second level")
            .organisation(ORG)
            .key(issuer_key)
            .valid_from_days(-1)
            .valid_for_days(1000)
            .issued_by(&pki().root)
            .expect("ca");
        let leaf = good_leaf()
            .key(KeySpec::EcP256)
            .issued_by(&ca)
            .expect("leaf");
        assert_eq!(
            leaf.certificate.signature_algorithm().object().nid(),
            algorithm
        );
        let trust = TrustMaterial::build(
            vec![pki().root.certificate.clone()],
            vec![ca.certificate.clone()],
        )
        .expect("trust");
        validate_partner_upload(
            &leaf.certificate,
            ORG,
            &trust,
            Utc::now(),
            &ValidationPolicy::default(),
        )
        .expect("accepted");
    }
}

#[test]
fn each_single_fault_gets_its_own_reason() {
    let cases: Vec<(&str, CertificateSpec, &str)> = vec![
        ("v1", good_leaf().version(X509Version::V1), "KER-PCM-007"),
        (
            "rsa1024",
            good_leaf().key(KeySpec::Rsa(1024)),
            "KER-PCM-013",
        ),
        ("p224", good_leaf().key(KeySpec::EcP224), "KER-PCM-013"),
        ("sha1", good_leaf().digest(DigestSpec::Sha1), "KER-PCM-014"),
        ("md5", good_leaf().digest(DigestSpec::Md5), "KER-PCM-014"),
        (
            "sha224",
            good_leaf().digest(DigestSpec::Sha224),
            "KER-PCM-014",
        ),
        ("future", good_leaf().valid_from_days(2), "KER-PMS-020"),
        (
            "expired",
            good_leaf().valid_from_days(-800).valid_for_days(400),
            "KER-PCM-004",
        ),
        (
            "300 days left",
            good_leaf().valid_from_days(-65).valid_for_days(365),
            "KER-KMS-021",
        ),
        (
            "334 days left",
            good_leaf()
                .valid_from_seconds(-3600)
                .valid_for_seconds(335 * 86_400 - 60),
            "KER-KMS-021",
        ),
        (
            "exactly 335 days",
            good_leaf()
                .valid_from_seconds(-3600)
                .valid_for_seconds(335 * 86_400 + 3600 + 60),
            "OK",
        ),
        ("second O", good_leaf().organisation("x"), "KER-PCM-008"),
        (
            "other O",
            CertificateSpec::leaf("p").organisation("acme chips"),
            "KER-PCM-008",
        ),
    ];
    for (name, spec, expected) in cases {
        assert_eq!(partner_reason(spec), expected, "{name}");
    }
}

#[test]
fn weak_signatures_never_surface_as_chain_errors() {
    // A SHA-1 leaf whose chain is otherwise fine: KER-PCM-014, not KER-PCM-006.
    let leaf = issue(good_leaf().digest(DigestSpec::Sha1));
    let err = validate_partner_upload(
        &leaf.certificate,
        ORG,
        &trust(),
        Utc::now(),
        &ValidationPolicy::default(),
    )
    .expect_err("refused");
    assert_eq!(err.reason(), "KER-PCM-014");
    assert_eq!(
        err,
        CertError::UnsupportedSignatureAlgorithm {
            algorithm: "sha1WithRSAEncryption".into()
        }
    );
    // Ed25519 signatures and RSA-PSS with SHA-1 are outside the accepted set.
    for issuer_key in [KeySpec::Ed25519, KeySpec::RsaPss(2048)] {
        let ca = good_ca("odd signer")
            .key(issuer_key)
            .issued_by(&pki().root)
            .expect("ca");
        let leaf = good_leaf()
            .digest(DigestSpec::Sha1)
            .issued_by(&ca)
            .expect("leaf");
        let err = validate_partner_certificate(
            &leaf.certificate,
            Utc::now(),
            &ValidationPolicy::default(),
        )
        .expect_err("refused");
        assert_eq!(err.reason(), "KER-PCM-014", "{issuer_key:?}");
    }
}

#[test]
fn self_signed_partner_is_kerpcm015() {
    let own = good_leaf().self_signed().expect("self-signed");
    let err = validate_partner_upload(
        &own.certificate,
        ORG,
        &trust(),
        Utc::now(),
        &ValidationPolicy::default(),
    )
    .expect_err("refused");
    assert_eq!(err, CertError::SelfSigned);
    assert_eq!(err.reason(), "KER-PCM-015");
}

#[test]
fn foreign_chain_is_kerpcm006_failed_precondition() {
    let leaf = good_leaf()
        .issued_by(&foreign_pki().intermediate)
        .expect("leaf");
    let err = validate_partner_upload(
        &leaf.certificate,
        ORG,
        &trust(),
        Utc::now(),
        &ValidationPolicy::default(),
    )
    .expect_err("refused");
    assert_eq!(err.reason(), "KER-PCM-006");
    assert_eq!(err.class(), ErrorClass::FailedPrecondition);
}

#[test]
fn organisation_must_be_single_and_exact() {
    let check = |spec: CertificateSpec| {
        let leaf = spec.self_signed().expect("leaf");
        check_organisation(&leaf.certificate, ORG)
    };
    let base = || CertificateSpec::leaf("p");
    assert_eq!(check(base().organisation(ORG)), Ok(()));
    for spec in [
        base(),
        base().organisation("acme chips"),
        base().organisation("Acme Chips "),
        base().organisation(ORG).organisation(ORG),
        base().organisation(ORG).organisation("Other"),
    ] {
        let err = check(spec).expect_err("mismatch");
        assert_eq!(err, CertError::OrganisationMismatch);
        assert_eq!(err.reason(), "KER-PCM-008");
    }
}

#[test]
fn thresholds_are_configurable() {
    let leaf = issue(good_leaf().valid_from_days(-65).valid_for_days(365));
    let lenient = ValidationPolicy {
        partner_min_validity_days: 200,
        ..ValidationPolicy::default()
    };
    assert_eq!(
        validate_partner_certificate(&leaf.certificate, Utc::now(), &lenient),
        Ok(())
    );
    let small = issue(good_leaf().key(KeySpec::Rsa(1024)));
    let weak_ok = ValidationPolicy {
        min_rsa_bits: 1024,
        ..ValidationPolicy::default()
    };
    assert_eq!(
        validate_partner_certificate(&small.certificate, Utc::now(), &weak_ok),
        Ok(())
    );
}

// ---------------------------------------------------------------- CA rules

#[test]
fn ca_rules_in_order() {
    assert_eq!(ca_reason(&pki().root.certificate), "OK");
    assert_eq!(ca_reason(&pki().intermediate.certificate), "OK");
    let root = &pki().root;
    let cases: Vec<(&str, CertificateSpec, &str)> = vec![
        ("v1", good_ca("v1").version(X509Version::V1), "KER-PCM-007"),
        ("leaf", good_ca("leaf").kind(CertKind::Leaf), "KER-PCM-019"),
        (
            "no basicConstraints",
            good_ca("plain").kind(CertKind::NoConstraints),
            "KER-PCM-019",
        ),
        (
            "future",
            good_ca("future").valid_from_days(3),
            "KER-PMS-020",
        ),
        (
            "expired",
            good_ca("expired")
                .valid_from_days(-1000)
                .valid_for_days(500),
            "KER-PCM-004",
        ),
        (
            "200 days",
            good_ca("short").valid_for_days(200),
            "KER-PCM-017",
        ),
        (
            "RSA-1024",
            good_ca("small").key(KeySpec::Rsa(1024)),
            "KER-PCM-013",
        ),
        (
            "P-224",
            good_ca("small curve").key(KeySpec::EcP224),
            "KER-PCM-013",
        ),
        (
            "SHA-1 signature",
            good_ca("sha1").digest(DigestSpec::Sha1),
            "KER-PCM-014",
        ),
        (
            "SHA-224 signature",
            good_ca("sha224").digest(DigestSpec::Sha224),
            "KER-PCM-014",
        ),
        (
            "weak key and expired: the key is reported first",
            good_ca("both")
                .key(KeySpec::Rsa(1024))
                .valid_from_days(-1000)
                .valid_for_days(500),
            "KER-PCM-013",
        ),
    ];
    for (name, spec, expected) in cases {
        let issued = spec.issued_by(root).expect("ca");
        assert_eq!(ca_reason(&issued.certificate), expected, "{name}");
        let own = spec.self_signed().expect("root");
        assert_eq!(ca_reason(&own.certificate), expected, "{name} self-signed");
    }
}

#[test]
fn ca_min_months_is_configurable() {
    let short = good_ca("short")
        .valid_for_days(200)
        .self_signed()
        .expect("root");
    let policy = ValidationPolicy {
        ca_min_validity_months: 6,
        ..ValidationPolicy::default()
    };
    assert_eq!(
        validate_ca_certificate(&short.certificate, Utc::now(), &policy),
        Ok(())
    );
}

// ---------------------------------------------------------------- chains

#[test]
fn chain_via_intermediate_leaf_first() {
    let chain = trust()
        .verify(&pki().ftm_chip.certificate, &[], None)
        .expect("chain");
    assert_eq!(
        ders(&chain),
        vec![
            der(&pki().ftm_chip.certificate),
            der(&pki().intermediate.certificate),
            der(&pki().root.certificate)
        ]
    );
}

#[test]
fn chain_fails_for_foreign_root_and_expired_leaf() {
    let err = trust()
        .verify(&foreign_pki().partner.certificate, &[], None)
        .expect_err("foreign");
    assert!(err.reason.contains("issuer"), "{}", err.reason);

    // Even with the foreign intermediate supplied, the foreign root is not trusted.
    let err = trust()
        .verify(
            &foreign_pki().partner.certificate,
            &[foreign_pki().intermediate.certificate.clone()],
            None,
        )
        .expect_err("foreign");
    assert!(!err.reason.is_empty());

    let expired = issue(good_leaf().valid_from_days(-800).valid_for_days(400));
    let err = trust()
        .verify(&expired.certificate, &[], None)
        .expect_err("expired");
    assert!(err.reason.contains("expired"), "{}", err.reason);
}

#[test]
fn verification_time_is_honoured() {
    let leaf = &pki().partner.certificate;
    let past = Utc::now() - Duration::days(30);
    let err = trust().verify(leaf, &[], Some(past)).expect_err("not yet");
    assert!(err.reason.contains("not yet valid"), "{}", err.reason);
    let future = Utc::now() + Duration::days(365);
    trust().verify(leaf, &[], Some(future)).expect("valid then");
    let later = Utc::now() + Duration::days(800);
    let err = trust()
        .verify(leaf, &[], Some(later))
        .expect_err("expired then");
    assert!(err.reason.contains("expired"), "{}", err.reason);
}

#[test]
fn extra_untrusted_certificates_help_build_the_path() {
    let roots_only =
        TrustMaterial::build(vec![pki().root.certificate.clone()], vec![]).expect("trust");
    let leaf = &pki().partner.certificate;
    assert!(roots_only.verify(leaf, &[], None).is_err());
    let chain = roots_only
        .verify(leaf, &[pki().intermediate.certificate.clone()], None)
        .expect("chain");
    assert_eq!(chain.len(), 3);
}

#[test]
fn weak_digest_in_the_path_is_refused() {
    let sha1_intermediate = good_ca("sha1 intermediate")
        .digest(DigestSpec::Sha1)
        .issued_by(&pki().root)
        .expect("ca");
    let leaf = good_leaf().issued_by(&sha1_intermediate).expect("leaf");
    let trust = TrustMaterial::build(
        vec![pki().root.certificate.clone()],
        vec![sha1_intermediate.certificate.clone()],
    )
    .expect("trust");
    let err = trust
        .verify(&leaf.certificate, &[], None)
        .expect_err("weak");
    assert!(err.reason.contains("too weak"), "{}", err.reason);
    // It is the security level that refuses it: at level 0 the same path verifies.
    let level0 = TrustMaterial::with_options(
        vec![pki().root.certificate.clone()],
        vec![sha1_intermediate.certificate.clone()],
        ChainOptions { security_level: 0 },
    )
    .expect("trust");
    level0
        .verify(&leaf.certificate, &[], None)
        .expect("level 0");
    // A 1024-bit RSA CA in the path is refused at the default level 2 as well.
    let small_ca = good_ca("small")
        .key(KeySpec::Rsa(1024))
        .issued_by(&pki().root)
        .expect("ca");
    let leaf = good_leaf().issued_by(&small_ca).expect("leaf");
    let trust = TrustMaterial::build(
        vec![pki().root.certificate.clone()],
        vec![small_ca.certificate.clone()],
    )
    .expect("trust");
    let err = trust
        .verify(&leaf.certificate, &[], None)
        .expect_err("small key");
    assert!(err.reason.contains("key too weak"), "{}", err.reason);

    // ... and a SHA-1 leaf does not chain either (the explicit check reports it first).
    let sha1_leaf = issue(good_leaf().digest(DigestSpec::Sha1));
    assert!(
        self::trust()
            .verify(&sha1_leaf.certificate, &[], None)
            .is_err()
    );

    // A leaf under a CA that is not a CA does not chain.
    let not_ca = good_ca("not a ca")
        .kind(CertKind::Leaf)
        .issued_by(&pki().root)
        .expect("leaf ca");
    let leaf = good_leaf().issued_by(&not_ca).expect("leaf");
    let trust = TrustMaterial::build(
        vec![pki().root.certificate.clone()],
        vec![not_ca.certificate.clone()],
    )
    .expect("trust");
    assert!(trust.verify(&leaf.certificate, &[], None).is_err());
}

#[test]
fn strict_validation_accepts_dev_and_platform_chains() {
    trust()
        .verify(&pki().partner.certificate, &[], None)
        .expect("strict chain");
    let platform = platform();
    let resigned = platform
        .signer
        .resign(&pki().partner.certificate)
        .expect("resign");
    let trust = TrustMaterial::build(
        vec![platform.root_certificate.clone()],
        vec![platform.signer.certificate.clone()],
    )
    .expect("trust");
    trust.verify(&resigned, &[], None).expect("strict chain");
}

#[test]
fn strict_validation_refuses_a_path_without_key_identifiers() {
    // Everything else right, but the intermediate carries no authorityKeyIdentifier: the
    // non-strict default of OpenSSL accepts it, X509_V_FLAG_X509_STRICT does not.
    let root = &pki().root;
    let mut builder = openssl::x509::X509Builder::new().expect("builder");
    builder.set_version(2).expect("version");
    builder
        .set_serial_number(&pmp_dev_certs::random_serial().expect("serial"))
        .expect("serial");
    let mut name = openssl::x509::X509NameBuilder::new().expect("name");
    name.append_entry_by_nid(openssl::nid::Nid::COMMONNAME, "no AKI")
        .expect("cn");
    let name = name.build();
    builder.set_subject_name(&name).expect("subject");
    builder
        .set_issuer_name(root.certificate.subject_name())
        .expect("issuer");
    let key = KeySpec::EcP256.generate().expect("key");
    builder.set_pubkey(&key).expect("key");
    let start = openssl::asn1::Asn1Time::days_from_now(0).expect("time");
    let end = openssl::asn1::Asn1Time::days_from_now(400).expect("time");
    builder.set_not_before(&start).expect("nb");
    builder.set_not_after(&end).expect("na");
    builder
        .append_extension(
            openssl::x509::extension::BasicConstraints::new()
                .critical()
                .ca()
                .build()
                .expect("bc"),
        )
        .expect("bc");
    builder
        .append_extension(
            openssl::x509::extension::KeyUsage::new()
                .critical()
                .key_cert_sign()
                .build()
                .expect("ku"),
        )
        .expect("ku");
    let skid = openssl::x509::extension::SubjectKeyIdentifier::new()
        .build(&builder.x509v3_context(None, None))
        .expect("skid");
    builder.append_extension(skid).expect("skid");
    builder
        .sign(&root.private_key, MessageDigest::sha256())
        .expect("sign");
    let no_aki = Issued {
        certificate: builder.build(),
        private_key: key,
    };
    let leaf = good_leaf().issued_by(&no_aki).expect("leaf");
    let trust = TrustMaterial::build(
        vec![root.certificate.clone()],
        vec![no_aki.certificate.clone()],
    )
    .expect("trust");
    assert!(trust.verify(&leaf.certificate, &[], None).is_err());
}

#[test]
fn intermediate_upload_chain_check() {
    let root = pki().root.certificate.clone();
    let intermediate = &pki().intermediate.certificate;
    assert!(is_issued_by_root_or_chain(
        intermediate,
        std::slice::from_ref(&root),
        &[],
        &[]
    ));
    // Root uploaded earlier in the same bundle.
    assert!(is_issued_by_root_or_chain(
        intermediate,
        &[],
        &[],
        std::slice::from_ref(&root)
    ));
    assert!(!is_issued_by_root_or_chain(intermediate, &[], &[], &[]));
    assert!(!is_issued_by_root_or_chain(
        intermediate,
        &[foreign_pki().root.certificate.clone()],
        &[],
        &[]
    ));
    // Second level: issuer is an intermediate already in the store, or earlier in the bundle.
    let second = good_ca("second level")
        .issued_by(&pki().intermediate)
        .expect("second");
    // The dev intermediate has pathLen 0: a CA directly below it is still a valid path
    // target (RFC 5280 does not count the target), but nothing it issues can chain.
    assert!(is_issued_by_root_or_chain(
        &second.certificate,
        std::slice::from_ref(&root),
        std::slice::from_ref(intermediate),
        &[]
    ));
    let too_deep = good_leaf().issued_by(&second).expect("leaf");
    let trust = TrustMaterial::build(
        vec![root.clone()],
        vec![intermediate.clone(), second.certificate.clone()],
    )
    .expect("trust");
    let err = trust
        .verify(&too_deep.certificate, &[], None)
        .expect_err("path length exceeded");
    assert!(err.reason.contains("path length"), "{}", err.reason);
    let open_intermediate = good_ca("open").issued_by(&pki().root).expect("ca");
    let second = good_ca("second").issued_by(&open_intermediate).expect("ca");
    let path = chain_to_domain_root(
        &second.certificate,
        &[],
        &[],
        &[root.clone(), open_intermediate.certificate.clone()],
        None,
    )
    .expect("path");
    assert_eq!(path.len(), 3);
    assert!(is_issued_by_root_or_chain(
        &second.certificate,
        std::slice::from_ref(&root),
        std::slice::from_ref(&open_intermediate.certificate),
        &[]
    ));
}

#[test]
fn order_bundle_puts_issuers_first() {
    let root = pki().root.certificate.clone();
    let int1 = good_ca("int1").issued_by(&pki().root).expect("int1");
    let int2 = good_ca("int2").issued_by(&int1).expect("int2");
    let leaf = good_leaf().issued_by(&int2).expect("leaf");
    let orphan = foreign_pki().intermediate.certificate.clone();
    let input = vec![
        leaf.certificate.clone(),
        orphan.clone(),
        int2.certificate.clone(),
        int1.certificate.clone(),
        root.clone(),
    ];
    let ordered = order_bundle(input);
    assert_eq!(
        ders(&ordered),
        vec![
            der(&root),
            der(&int1.certificate),
            der(&int2.certificate),
            der(&leaf.certificate),
            der(&orphan)
        ]
    );
    assert!(order_bundle(Vec::new()).is_empty());
}

#[test]
fn trust_material_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TrustMaterial>();
    assert_send_sync::<PlatformSigner>();
    // Concurrent verification against one shared value.
    let trust = std::sync::Arc::new(trust());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let trust = trust.clone();
            std::thread::spawn(move || {
                trust
                    .verify(&pki().partner.certificate, &[], None)
                    .map(|c| c.len())
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().expect("thread"), Ok(3));
    }
}

// ---------------------------------------------------------------- re-signing

#[test]
fn resign_copies_subject_and_issues_one_year_copy() {
    let platform = platform();
    let partner = CertificateSpec::leaf("Chip 42")
        .organisation(ORG)
        .organisational_unit("Devices")
        .locality("Bengaluru")
        .state("KA")
        .country("IN")
        .key(KeySpec::EcP256)
        .valid_from_days(-1)
        .valid_for_days(730)
        .issued_by(&pki().intermediate)
        .expect("partner");
    let now = Utc::now();
    let resigned = platform
        .signer
        .resign(&partner.certificate)
        .expect("resign");
    let facts = CertificateFacts::of(&resigned).expect("facts");
    let partner_facts = CertificateFacts::of(&partner.certificate).expect("facts");
    assert_eq!(facts.subject, partner_facts.subject);
    assert_eq!(
        facts.subject,
        "CN=Chip 42,OU=Devices,O=Acme Chips,L=Bengaluru,ST=KA,C=IN"
    );
    assert_eq!(
        facts.issuer,
        CertificateFacts::of(&platform.signer.certificate)
            .expect("facts")
            .subject
    );
    assert!(!facts.is_ca, "a copy of a CA:FALSE certificate is CA:FALSE");
    assert_eq!(facts.version, 3);
    assert!((facts.not_before - now).num_seconds().abs() < 120);
    assert_eq!((facts.not_after - facts.not_before).num_days(), 365);
    let serial = resigned.serial_number().to_bn().expect("bn");
    assert!(!serial.is_negative());
    assert!(serial.num_bits() >= 64 && serial.num_bits() <= 159);
    let signer_key = platform.signer.certificate.public_key().expect("key");
    assert!(resigned.verify(&signer_key).expect("verify"));
    assert!(
        resigned
            .public_key()
            .expect("key")
            .public_eq(&partner.certificate.public_key().expect("key"))
    );
    let usage = resigned.key_usage().expect("key usage");
    assert_eq!(usage, X509KeyUsage::DIGITAL_SIGNATURE);
    assert_eq!(
        resigned.authority_key_id().map(|k| k.as_slice().to_vec()),
        platform
            .signer
            .certificate
            .subject_key_id()
            .map(|k| k.as_slice().to_vec())
    );
    assert!(resigned.subject_key_id().is_some());
    assert_eq!(
        resigned.signature_algorithm().object().nid(),
        openssl::nid::Nid::SHA256WITHRSAENCRYPTION
    );
    let text = String::from_utf8(resigned.to_text().expect("text")).expect("utf8");
    assert!(
        text.contains("X509v3 Basic Constraints: critical"),
        "{text}"
    );
    assert!(text.contains("X509v3 Key Usage: critical"), "{text}");

    // Verifies under the platform PKI.
    let trust = TrustMaterial::build(
        vec![platform.root_certificate.clone()],
        vec![platform.signer.certificate.clone()],
    )
    .expect("trust");
    assert_eq!(trust.verify(&resigned, &[], None).expect("chain").len(), 3);
}

#[test]
fn resign_tolerates_a_missing_cn_and_adds_no_key_usage() {
    let platform = platform();
    let partner = good_leaf()
        .without_common_name()
        .issued_by(&pki().intermediate)
        .expect("partner");
    let resigned = platform
        .signer
        .resign(&partner.certificate)
        .expect("resign");
    let usage = resigned.key_usage().expect("key usage");
    assert!(!usage.contains(X509KeyUsage::KEY_ENCIPHERMENT));
    assert!(!usage.contains(X509KeyUsage::KEY_CERT_SIGN));
    let facts = CertificateFacts::of(&resigned).expect("facts");
    assert_eq!(facts.subject, "O=Acme Chips,C=IN");
}

/// The extensions of a certificate that decide what it may do, as encoded.
fn powers(certificate: &X509) -> Vec<Option<super::der::RawExtension>> {
    let encoded = der(certificate);
    [
        super::facts::OID_BASIC_CONSTRAINTS,
        super::facts::OID_KEY_USAGE,
        super::facts::OID_EXTENDED_KEY_USAGE,
    ]
    .iter()
    .map(|oid| super::der::extension(&encoded, oid))
    .collect()
}

#[test]
fn platform_signed_copies_never_grant_more_than_the_original() {
    let platform = platform();
    let chip_ca = good_ca("chip that issues device keys")
        .path_len(0)
        .issued_by(&pki().root)
        .expect("chip CA");
    let bare = CertificateSpec::leaf("no constraints")
        .organisation(ORG)
        .kind(CertKind::NoConstraints)
        .valid_from_days(-1)
        .valid_for_days(730)
        .issued_by(&pki().intermediate)
        .expect("bare");
    let mut with_eku = openssl::x509::X509Builder::new().expect("builder");
    with_eku.set_version(2).expect("version");
    with_eku
        .set_serial_number(&pmp_dev_certs::random_serial().expect("serial"))
        .expect("serial");
    with_eku
        .set_subject_name(pki().partner.certificate.subject_name())
        .expect("subject");
    with_eku
        .set_issuer_name(pki().intermediate.certificate.subject_name())
        .expect("issuer");
    with_eku
        .set_pubkey(&pki().partner.private_key)
        .expect("key");
    with_eku
        .set_not_before(pki().partner.certificate.not_before())
        .expect("nb");
    with_eku
        .set_not_after(pki().partner.certificate.not_after())
        .expect("na");
    with_eku
        .append_extension(
            openssl::x509::extension::ExtendedKeyUsage::new()
                .client_auth()
                .build()
                .expect("eku"),
        )
        .expect("eku");
    with_eku
        .sign(&pki().intermediate.private_key, MessageDigest::sha256())
        .expect("sign");
    let with_eku = with_eku.build();
    for original in [
        &pki().partner.certificate,
        &pki().ftm_chip.certificate,
        &chip_ca.certificate,
        &bare.certificate,
        &with_eku,
    ] {
        let copy = platform.signer.resign(original).expect("resign");
        assert_eq!(powers(&copy), powers(original));
        let copy_facts = CertificateFacts::of(&copy).expect("facts");
        let original_facts = CertificateFacts::of(original).expect("facts");
        assert_eq!(copy_facts.is_ca, original_facts.is_ca);
        assert_eq!(copy_facts.path_len, original_facts.path_len);
    }
    let copy = platform
        .signer
        .resign(&chip_ca.certificate)
        .expect("resign");
    let facts = CertificateFacts::of(&copy).expect("facts");
    assert!(facts.is_ca);
    assert_eq!(facts.path_len, Some(0));
    let bare_copy = platform.signer.resign(&bare.certificate).expect("resign");
    assert!(!CertificateFacts::of(&bare_copy).expect("facts").is_ca);
    assert!(bare_copy.key_usage().is_none());
}

#[test]
fn generated_platform_pki_and_pem_round_trip() {
    let platform = platform();
    let root = CertificateFacts::of(&platform.root_certificate).expect("facts");
    assert!(root.is_self_signed && root.is_ca);
    assert!((root.not_after - root.not_before).num_days() >= 3649);
    let signer = CertificateFacts::of(&platform.signer.certificate).expect("facts");
    assert!(signer.is_ca && !signer.is_self_signed);
    assert_eq!(signer.issuer, root.subject);
    assert_eq!((signer.not_after - signer.not_before).num_days(), 1825);
    assert!(
        platform
            .signer
            .certificate
            .verify(&platform.root_private_key)
            .expect("verify")
    );

    let cert_pem = platform.signer.certificate_pem().expect("pem");
    let key_pem = platform.signer.private_key_pem().expect("pem");
    let loaded = PlatformSigner::from_pem(&cert_pem, &key_pem).expect("load");
    assert_eq!(der(&loaded.certificate), der(&platform.signer.certificate));
    assert!(!format!("{loaded:?}").contains("PRIVATE"));

    let wrong_key = pki().root.key_pem().expect("pem");
    let err = PlatformSigner::from_pem(&cert_pem, &wrong_key).expect_err("mismatch");
    assert_eq!(err.class(), ErrorClass::Internal);
    assert!(PlatformSigner::from_pem("garbage", &key_pem).is_err());
}

// ---------------------------------------------------------------- PKCS#7

#[test]
fn p7b_round_trip_with_openssl() {
    let certs = vec![
        pki().partner.certificate.clone(),
        pki().intermediate.certificate.clone(),
        pki().root.certificate.clone(),
    ];
    let p7b = certs_to_p7b_der(&certs).expect("p7b");
    let parsed = Pkcs7::from_der(&p7b).expect("openssl parses it");
    let inside: Vec<X509> = parsed
        .signed()
        .expect("signed data")
        .certificates()
        .expect("certificates")
        .iter()
        .map(|c| c.to_owned())
        .collect();
    assert_eq!(ders(&inside), ders(&certs));
    // Re-encoding by OpenSSL yields the same bytes: our DER is canonical.
    assert_eq!(parsed.to_der().expect("der"), p7b);
    assert_eq!(ders(&p7b_der_to_certs(&p7b).expect("certs")), ders(&certs));

    let empty = certs_to_p7b_der(&[]).expect("empty");
    assert_eq!(
        p7b_der_to_certs(&empty).err(),
        Some(CertError::NoCertificate)
    );
}

#[test]
fn pem_string_is_a_certificate_pem() {
    let text = pem_string(&pki().root.certificate).expect("pem");
    assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n"));
    let back = parse_partner_certificate(&text).expect("parse");
    assert_eq!(der(&back), der(&pki().root.certificate));
}

// ---------------------------------------------------------------- errors

#[test]
fn reasons_and_classes() {
    let expected = [
        (CertError::Blank, "KER-PCM-001", ErrorClass::InvalidArgument),
        (
            CertError::NotPemOrP7b,
            "KER-PCM-001",
            ErrorClass::InvalidArgument,
        ),
        (
            CertError::Unparsable { detail: "x".into() },
            "KER-KMS-013",
            ErrorClass::InvalidArgument,
        ),
        (CertError::NotCa, "KER-PCM-019", ErrorClass::InvalidArgument),
        (
            CertError::CaValidityTooShort { min_months: 12 },
            "KER-PCM-017",
            ErrorClass::InvalidArgument,
        ),
        (
            CertError::RootNotFound { detail: "x".into() },
            "KER-PCM-005",
            ErrorClass::FailedPrecondition,
        ),
        (
            CertError::Internal("file.c:12".into()),
            "PMS_INTERNAL",
            ErrorClass::Internal,
        ),
    ];
    for (error, reason, class) in expected {
        assert_eq!(error.reason(), reason);
        assert_eq!(error.class(), class);
        assert!(!error.message().is_empty());
    }
    assert_eq!(
        CertError::Internal("file.c:12".into()).message(),
        "internal error"
    );
}

// ---------------------------------------------------------------- identity and encodings

#[test]
fn identity_is_the_signed_part_whatever_the_signature_bytes() {
    let issuer = good_ca("ec issuer").self_signed().expect("issuer");
    let leaf = good_leaf()
        .key(KeySpec::EcP256)
        .issued_by(&issuer)
        .expect("leaf");
    let copy = pmp_dev_certs::attacks::malleated_copy(&leaf.certificate, &issuer.certificate)
        .expect("malleated copy");
    let original = CertificateFacts::of(&leaf.certificate).expect("facts");
    let malleated = CertificateFacts::of(&copy).expect("facts");
    assert_ne!(original.thumbprint, malleated.thumbprint, "other bytes");
    assert_eq!(original.identity, malleated.identity, "same certificate");
    // Both still verify: only the identity tells them apart from other certificates.
    let trust = TrustMaterial::build(vec![issuer.certificate.clone()], vec![]).expect("trust");
    trust.verify(&copy, &[], None).expect("the copy chains");
    // The migration computes identities of stored rows the same way.
    assert_eq!(
        certificate_store_migration::identity::identity_of_pem(&pem(&leaf)).as_deref(),
        Some(original.identity.as_str())
    );
    // And the cache key sees two requests.
    assert_ne!(
        chain_key("FTM", &pem(&leaf)),
        chain_key("FTM", &pmp_dev_certs::attacks::pem_of(&der(&copy)))
    );
}

#[test]
fn non_canonical_der_is_kerkms013_in_every_form() {
    use pmp_dev_certs::attacks::{pem_of, with_long_form_length, with_trailing_data};
    let leaf = issue(good_leaf());
    let long = with_long_form_length(&leaf.certificate).expect("long form");
    let trailing = with_trailing_data(&leaf.certificate, &[0x05, 0x00]).expect("trailing");
    for (name, encoded) in [("long-form length", &long), ("trailing data", &trailing)] {
        let armoured = pem_of(encoded);
        for (parser, result) in [
            ("partner", parse_partner_certificate(&armoured).map(|_| ())),
            ("bundle", parse_ca_bundle(&armoured).map(|_| ())),
            ("chain", parse_chain(&armoured).map(|_| ())),
            (
                "base64 DER",
                parse_ca_bundle(&STANDARD.encode(encoded)).map(|_| ()),
            ),
        ] {
            let error = result.expect_err(name);
            assert_eq!(
                error.reason(),
                "KER-KMS-013",
                "{name} via {parser}: {error}"
            );
            assert!(
                error.message().contains("canonical"),
                "{name}: {}",
                error.message()
            );
        }
    }
    // The canonical encoding of the same certificate is accepted.
    parse_partner_certificate(&pem(&leaf)).expect("canonical");
}

#[test]
fn a_corrupted_public_key_is_unparsable_not_internal() {
    let leaf = issue(good_leaf().key(KeySpec::EcP256));
    let encoded =
        pmp_dev_certs::attacks::with_corrupted_public_key(&leaf.certificate).expect("corrupt");
    let armoured = pmp_dev_certs::attacks::pem_of(&encoded);
    for result in [
        parse_partner_certificate(&armoured).map(|_| ()),
        parse_ca_bundle(&armoured).map(|_| ()),
        parse_chain(&armoured).map(|_| ()),
    ] {
        assert_eq!(result.expect_err("corrupt key").reason(), "KER-KMS-013");
    }
    assert!(
        openssl::error::ErrorStack::get().errors().is_empty(),
        "nothing left on the error queue"
    );
}

#[test]
fn openssl_failures_never_leak_into_a_later_error_on_the_same_thread() {
    openssl::error::ErrorStack::get();
    // Failures that OpenSSL reports on the thread's queue while answering "no".
    let foreign = CertificateSpec::ca("self-issued, foreign-signed")
        .key(KeySpec::EcP256)
        .issued_by(&foreign_pki().root)
        .expect("foreign");
    assert!(!is_self_signed(&foreign.certificate));
    assert!(
        trust()
            .verify(&foreign_pki().partner.certificate, &[], None)
            .is_err()
    );
    assert!(
        parse_partner_certificate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .is_err()
    );
    order_bundle(vec![
        foreign_pki().partner.certificate.clone(),
        pki().root.certificate.clone(),
    ]);
    let leftovers = openssl::error::ErrorStack::get();
    assert!(
        leftovers.errors().is_empty(),
        "errors of finished calls stayed on the queue: {leftovers}"
    );
    // So an unrelated failure afterwards reports only its own error.
    let unrelated = X509::from_pem(b"not pem").expect_err("fails");
    assert!(
        unrelated
            .errors()
            .iter()
            .all(|error| !error.to_string().contains("signature")),
        "{unrelated}"
    );
}

#[test]
fn chain_keys_name_the_exact_request() {
    let leaf = pem(&issue(good_leaf()));
    let intermediate = pem(&pki().intermediate);
    let chain = format!("{leaf}{intermediate}");
    let key = chain_key("FTM", &chain);
    assert_eq!(chain_key("FTM", &chain.clone()), key, "the same text");
    // Other text for the same certificates is another request, verified on its own.
    assert_ne!(chain_key("FTM", &chain.replace('\n', "\r\n")), key);
    let p7b = certs_to_p7b_base64url(&[issue(good_leaf()).certificate]).expect("p7b");
    assert_ne!(chain_key("FTM", &p7b), key);
    assert_ne!(
        chain_key("DEVICE", &chain),
        key,
        "the domain is part of the key"
    );
    assert_ne!(chain_key("FTM", &leaf), key, "helpers are part of the key");
    // No separator games: the domain ends where the text begins.
    assert_ne!(chain_key("FT", &format!("M{chain}")), key);
}

#[test]
fn verification_requests_carry_at_most_ten_certificates() {
    let leaf = pem(&issue(good_leaf()));
    assert_eq!(parse_chain(&leaf.repeat(10)).expect("ten").len(), 10);
    let error = parse_chain(&leaf.repeat(11)).expect_err("eleven");
    assert_eq!(error.reason(), "KER-PCM-001");
    assert_eq!(
        error,
        CertError::TooManyCertificates {
            found: 11,
            max: MAX_CHAIN_CERTIFICATES
        }
    );
}

// ---------------------------------------------------------------- platform key in an HSM

#[test]
fn a_platform_key_in_an_hsm_signs_copies_that_verify_up_to_the_platform_root() {
    use pmp_common::signing::testing::SoftHsm;
    use pmp_common::signing::{KeyAlgorithm, Pkcs11Key};

    let hsm = SoftHsm::start().expect("SoftHSM token");
    let partner = &pki().partner.certificate;
    for algorithm in [
        KeyAlgorithm::Rsa { bits: 3072 },
        KeyAlgorithm::EcP256,
        KeyAlgorithm::EcP384,
    ] {
        let label = format!("platform-{algorithm:?}");
        let public_key = hsm.generate(&label, algorithm).expect("generated");
        let (root, certificate) = PlatformSigner::issue_for_key(&public_key).expect("issued");
        let key = Pkcs11Key::open(&hsm.settings, &label).expect("opened");
        let signer = PlatformSigner::new(certificate.clone(), std::sync::Arc::new(key))
            .expect("the token's key matches its certificate");
        assert!(
            signer.private_key_pem().is_err(),
            "an HSM key is never exported"
        );

        let copy = signer.resign(partner).expect("re-signed in the HSM");
        assert!(copy.verify(&public_key).expect("verify"), "{algorithm:?}");
        let expected = if algorithm == KeyAlgorithm::EcP384 {
            openssl::nid::Nid::ECDSA_WITH_SHA384
        } else if algorithm == KeyAlgorithm::EcP256 {
            openssl::nid::Nid::ECDSA_WITH_SHA256
        } else {
            openssl::nid::Nid::SHA256WITHRSAENCRYPTION
        };
        assert_eq!(copy.signature_algorithm().object().nid(), expected);
        assert!(
            copy.public_key()
                .expect("key")
                .public_eq(&partner.public_key().expect("key"))
        );

        // The copy chains to the platform root as any verifier checks it.
        let mut roots = openssl::x509::store::X509StoreBuilder::new().expect("store");
        roots.add_cert(root).expect("root");
        let roots = roots.build();
        let mut intermediates = openssl::stack::Stack::new().expect("stack");
        intermediates.push(certificate).expect("push");
        let mut context = openssl::x509::X509StoreContext::new().expect("context");
        let verified = context
            .init(&roots, &copy, &intermediates, |context| {
                context.verify_cert()
            })
            .expect("verification ran");
        assert!(verified, "{algorithm:?}: {}", context.error());
    }

    // A token key that is not the certificate's is refused at start-up.
    hsm.generate("stranger", KeyAlgorithm::EcP256)
        .expect("generated");
    let stranger = Pkcs11Key::open(&hsm.settings, "stranger").expect("opened");
    let error = PlatformSigner::new(
        platform().signer.certificate.clone(),
        std::sync::Arc::new(stranger),
    )
    .expect_err("mismatch");
    assert_eq!(error.class(), ErrorClass::Internal);
}

/// A key whose HSM has gone away.
#[derive(Debug)]
struct UnreachableKey {
    public: openssl::pkey::PKey<openssl::pkey::Public>,
}

impl pmp_common::signing::PrivateKey for UnreachableKey {
    fn public_key(&self) -> &openssl::pkey::PKey<openssl::pkey::Public> {
        &self.public
    }

    fn algorithm(&self) -> pmp_common::signing::KeyAlgorithm {
        pmp_common::signing::KeyAlgorithm::of(&self.public).expect("supported")
    }

    fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, pmp_common::signing::SigningError> {
        Err(pmp_common::signing::SigningError::Unavailable(
            "CKR_DEVICE_REMOVED".into(),
        ))
    }

    fn describe(&self) -> String {
        "a token that went away".into()
    }
}

#[test]
fn a_copy_the_hsm_cannot_sign_now_fails_as_unavailable() {
    let certificate = platform().signer.certificate.clone();
    let public = certificate.public_key().expect("public key");
    let signer = PlatformSigner::new(certificate, std::sync::Arc::new(UnreachableKey { public }))
        .expect("the key matches");
    let error = signer
        .resign(&pki().partner.certificate)
        .expect_err("no signature");
    assert!(
        matches!(error, CertError::SigningUnavailable(_)),
        "{error:?}"
    );
    assert_eq!(error.class(), ErrorClass::Unavailable);
    assert_eq!(error.reason(), "PMS_UNAVAILABLE");
}
