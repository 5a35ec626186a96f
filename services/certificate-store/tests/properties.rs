//! Property tests of the certificate store's parsing and verification entry points: any
//! input, garbage or a mutated real certificate, gets a contract reason (never
//! PMS_INTERNAL, never a panic) and leaves OpenSSL's error queue empty; the forms of the
//! same certificates are interchangeable; the chain limit holds; `order_bundle` only
//! reorders. The per-input rules are those of the fuzz targets (`fuzz/checks.rs`, included
//! here); certificates are generated once per run.

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use certificate_store::x509::{self, CertError};
use openssl::x509::X509;
use pmp_dev_certs::{CertificateSpec, DevPki, DigestSpec, KeySpec, X509Version};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config as ProptestConfig;

#[allow(dead_code)]
mod checks {
    include!("../../../fuzz/checks.rs");
}

use checks::{CHAIN_DOMAIN, DOMAIN, FIXTURE, der, ders, pem_armour, pem_of};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Failures are reported in the test output; no regression files in the source tree.
        failure_persistence: None,
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    }
}

/// Certificates to combine: the fixture's PKI, a foreign PKI, and one certificate per
/// contract fault (all issued by the fixture's intermediate unless noted).
static POOL: LazyLock<Vec<X509>> = LazyLock::new(|| {
    let pki = &FIXTURE.pki;
    let foreign = DevPki::generate("Foreign Org").expect("foreign PKI");
    let leaf = |cn: &str| CertificateSpec::leaf(cn).organisation(checks::ORGANISATION);
    let issue = |spec: CertificateSpec| {
        spec.issued_by(&pki.intermediate)
            .expect("certificate")
            .certificate
    };
    let pool = vec![
        pki.root.certificate.clone(),
        pki.intermediate.certificate.clone(),
        pki.partner.certificate.clone(),
        pki.ftm_chip.certificate.clone(),
        foreign.root.certificate.clone(),
        foreign.intermediate.certificate.clone(),
        foreign.partner.certificate.clone(),
        issue(leaf("v1").version(X509Version::V1)),
        issue(leaf("sha1").digest(DigestSpec::Sha1)),
        issue(leaf("expired").valid_from_days(-400).valid_for_days(30)),
        issue(leaf("ed25519").key(KeySpec::Ed25519)),
        issue(leaf("p384").key(KeySpec::EcP384).digest(DigestSpec::Sha384)),
        leaf("self-signed")
            .key(KeySpec::EcP256)
            .self_signed()
            .expect("self-signed")
            .certificate,
    ];
    x509::clear_error_queue();
    pool
});

/// DER inputs to mutate: every pool certificate and P7B bundles of real chains.
static MUTATION_SOURCES: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let pool = &*POOL;
    let mut sources = ders(pool);
    for chain in [&[2usize, 1, 0][..], &[3, 1], &[6, 5, 4]] {
        let certs: Vec<X509> = chain.iter().map(|&i| pool[i].clone()).collect();
        sources.push(x509::certs_to_p7b_der(&certs).expect("P7B"));
    }
    sources
});

fn certs(indices: &[usize]) -> Vec<X509> {
    indices.iter().map(|&i| POOL[i].clone()).collect()
}

fn pool_index() -> impl Strategy<Value = usize> {
    0..POOL.len()
}

// ---------------------------------------------------------------------------------------
// Garbage.

/// Text made of PEM and base64 fragments, so that armour parsing is reached often.
fn pem_like_text() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("-----BEGIN ".to_owned()),
        Just("-----END ".to_owned()),
        Just("-----".to_owned()),
        Just("CERTIFICATE".to_owned()),
        Just("PKCS7".to_owned()),
        Just("TRUSTED CERTIFICATE".to_owned()),
        Just("PRIVATE KEY".to_owned()),
        Just("-----BEGIN CERTIFICATE-----\n".to_owned()),
        Just("-----END CERTIFICATE-----\n".to_owned()),
        Just("-----BEGIN PKCS7-----\n".to_owned()),
        Just("-----END PKCS7-----\n".to_owned()),
        Just("MII".to_owned()),
        Just("\r\n".to_owned()),
        Just("\n".to_owned()),
        Just(" \t".to_owned()),
        Just("\u{feff}".to_owned()),
        Just("=".to_owned()),
        "[A-Za-z0-9+/=_-]{0,96}",
        any::<String>(),
    ];
    prop::collection::vec(fragment, 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(config(256))]

    /// Any string through every parser, `chain_key` and `evaluate`.
    #[test]
    fn arbitrary_text_gets_contract_reasons(text in any::<String>()) {
        checks::check_upload(&text);
        checks::check_verify(&text);
    }

    /// PEM-like garbage through every parser, `chain_key` and `evaluate`.
    #[test]
    fn pem_like_garbage_gets_contract_reasons(text in pem_like_text()) {
        checks::check_upload(&text);
        checks::check_verify(&text);
    }

    /// Any bytes as lossy UTF-8, as base64 (standard, URL-safe) and PEM-armoured.
    #[test]
    fn arbitrary_bytes_in_every_form_get_contract_reasons(
        bytes in prop::collection::vec(any::<u8>(), 0..1536),
    ) {
        checks::check_upload_bytes(&bytes);
        checks::check_verify_bytes(&bytes);
        checks::check_upload(&STANDARD.encode(&bytes));
        checks::check_upload(&pem_armour("PKCS7", &bytes));
    }
}

// ---------------------------------------------------------------------------------------
// Mutated certificates.

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
    /// Copies a run of bytes over another place (keeps DER-looking structure).
    Splice(Index, Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip(at, bit)),
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set(at, byte)),
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert(at, byte)),
        any::<Index>().prop_map(Mutation::Delete),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), any::<Index>(), 1u8..64)
            .prop_map(|(from, to, len)| Mutation::Splice(from, to, len)),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let len = bytes.len();
    match mutation {
        Mutation::Flip(at, bit) => bytes[at.index(len)] ^= 1 << bit,
        Mutation::Set(at, byte) => bytes[at.index(len)] = *byte,
        Mutation::Insert(at, byte) => bytes.insert(at.index(len + 1), *byte),
        Mutation::Delete(at) => {
            bytes.remove(at.index(len));
        }
        Mutation::Truncate(at) => bytes.truncate(at.index(len)),
        Mutation::Splice(from, to, run) => {
            let from = from.index(len);
            let to = to.index(len);
            let run = usize::from(*run).min(len - from).min(len - to);
            let copied = bytes[from..from + run].to_vec();
            bytes[to..to + run].copy_from_slice(&copied);
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// A real certificate or P7B with a few bytes flipped, set, inserted, deleted or
    /// spliced, re-armoured as PEM and base64: contract reasons only, empty error queue,
    /// and whatever still parses goes through validation and re-signing.
    #[test]
    fn mutated_certificates_get_contract_reasons(
        source in 0..MUTATION_SOURCES.len(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut bytes = MUTATION_SOURCES[source].clone();
        for mutation in &mutations {
            apply(&mut bytes, mutation);
        }
        checks::check_verify_bytes(&bytes);
        checks::check_upload(&STANDARD.encode(&bytes));
        checks::check_upload(&pem_armour("PKCS7", &bytes));
    }
}

// ---------------------------------------------------------------------------------------
// Forms of the same certificates.

#[derive(Debug, Clone)]
struct Layout {
    width: usize,
    crlf: bool,
    strip_padding: bool,
    before: String,
    between: String,
    after: String,
}

fn layout() -> impl Strategy<Value = Layout> {
    let space = "[ \t\r\n]{0,4}";
    (
        1usize..=128,
        any::<bool>(),
        any::<bool>(),
        space,
        space,
        space,
    )
        .prop_map(
            |(width, crlf, strip_padding, before, between, after)| Layout {
                width,
                crlf,
                strip_padding,
                before,
                between,
                after,
            },
        )
}

fn wrap(base64: &str, layout: &Layout) -> String {
    let base64 = if layout.strip_padding {
        base64.trim_end_matches('=')
    } else {
        base64
    };
    let newline = if layout.crlf { "\r\n" } else { "\n" };
    base64
        .as_bytes()
        .chunks(layout.width)
        .map(|line| std::str::from_utf8(line).expect("ASCII"))
        .collect::<Vec<_>>()
        .join(newline)
}

/// `certs` as PEM blocks laid out by `layout`.
fn laid_out_pem(certs: &[X509], label: &str, layout: &Layout) -> String {
    let newline = if layout.crlf { "\r\n" } else { "\n" };
    let blocks: Vec<String> = certs
        .iter()
        .map(|cert| {
            format!(
                "-----BEGIN {label}-----{newline}{}{newline}-----END {label}-----",
                wrap(&STANDARD.encode(der(cert)), layout)
            )
        })
        .collect();
    format!(
        "{}{}{}",
        layout.before,
        blocks.join(&layout.between),
        layout.after
    )
}

/// The same `certs` as PKCS#7: PEM-armoured or bare base64 in one of four alphabets.
fn laid_out_p7b(certs: &[X509], encoding: u8, layout: &Layout) -> String {
    let p7b = x509::certs_to_p7b_der(certs).expect("P7B");
    let newline = if layout.crlf { "\r\n" } else { "\n" };
    let body = match encoding % 5 {
        0 => {
            return format!(
                "{}-----BEGIN PKCS7-----{newline}{}{newline}-----END PKCS7-----{}",
                layout.before,
                wrap(&STANDARD.encode(&p7b), layout),
                layout.after
            );
        }
        1 => STANDARD.encode(&p7b),
        2 => STANDARD_NO_PAD.encode(&p7b),
        3 => URL_SAFE.encode(&p7b),
        _ => URL_SAFE_NO_PAD.encode(&p7b),
    };
    format!("{}{}{}", layout.before, wrap(&body, layout), layout.after)
}

fn parsed_ders(data: &str) -> Result<Vec<Vec<u8>>, &'static str> {
    let result = x509::parse_chain(data).map(|certs| ders(&certs));
    x509::clear_error_queue();
    result.map_err(|error| error.reason())
}

proptest! {
    #![proptest_config(config(128))]

    /// Line width, CRLF, padding and surrounding white space do not change the parsed chain
    /// of PEM, and every P7B form parses to the same chain; the cache key follows the text,
    /// so only the very same text shares a key.
    #[test]
    fn rewrapping_changes_no_chain(
        indices in prop::collection::vec(pool_index(), 1..=4),
        layout in layout(),
        encoding in any::<u8>(),
    ) {
        let certs = certs(&indices);
        let plain = pem_of(&ders(&certs));
        let key = x509::chain_key(DOMAIN, &plain);
        let expected = parsed_ders(&plain);
        prop_assert_eq!(&expected, &Ok(ders(&certs)));
        for data in [
            laid_out_pem(&certs, "CERTIFICATE", &layout),
            laid_out_p7b(&certs, encoding, &layout),
        ] {
            prop_assert_eq!(x509::chain_key(DOMAIN, &data) == key, data == plain, "key of {:?}", data);
            prop_assert_eq!(&parsed_ders(&data), &expected, "chain of {:?}", data);
            prop_assert!(openssl::error::ErrorStack::get().errors().is_empty());
            checks::check_upload(&data);
        }
    }

    /// Different certificate lists (or domains) never share a key.
    #[test]
    fn different_certificates_get_different_keys(
        a in prop::collection::vec(pool_index(), 1..=3),
        b in prop::collection::vec(pool_index(), 1..=3),
    ) {
        let (a, b) = (ders(&certs(&a)), ders(&certs(&b)));
        let key_a = x509::chain_key(DOMAIN, &pem_of(&a));
        let key_b = x509::chain_key(DOMAIN, &pem_of(&b));
        prop_assert_eq!(a == b, key_a == key_b);
        prop_assert_ne!(key_a, x509::chain_key(CHAIN_DOMAIN, &pem_of(&a)));
    }

    /// At most ten certificates per chain, in every form; more is KER-PCM-001.
    #[test]
    fn chains_over_ten_certificates_are_refused(
        count in 1usize..=14,
        index in pool_index(),
        encoding in any::<u8>(),
        layout in layout(),
    ) {
        let certs: Vec<X509> = (0..count).map(|_| POOL[index].clone()).collect();
        for data in [pem_of(&ders(&certs)), laid_out_p7b(&certs, encoding, &layout)] {
            let chain = x509::parse_chain(&data);
            prop_assert!(openssl::error::ErrorStack::get().errors().is_empty());
            if count <= x509::MAX_CHAIN_CERTIFICATES {
                prop_assert_eq!(chain.map(|c| c.len()), Ok(count));
            } else {
                let error = chain.expect_err("more than ten certificates");
                prop_assert!(
                    matches!(error, CertError::TooManyCertificates { found, max: 10 } if found == count),
                    "{:?}", error
                );
                prop_assert_eq!(error.reason(), "KER-PCM-001");
                // A CA bundle has no such limit.
                prop_assert_eq!(x509::parse_ca_bundle(&data).map(|c| c.len()), Ok(count));
            }
            prop_assert!(openssl::error::ErrorStack::get().errors().is_empty());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Bundle ordering.

/// `issuer` issued `cert` as `order_bundle` decides it: names chain and the signature
/// verifies (computed independently of the library).
fn issued(cert: &X509, issuer: &X509) -> bool {
    let names = matches!(
        issuer.subject_name().try_cmp(cert.issuer_name()),
        Ok(std::cmp::Ordering::Equal)
    );
    let signed = issuer
        .public_key()
        .is_ok_and(|key| cert.verify(&key).unwrap_or(false));
    x509::clear_error_queue();
    names && signed
}

proptest! {
    #![proptest_config(config(128))]

    /// `order_bundle` returns a permutation: roots first, then every certificate after one
    /// of its issuers as long as that is possible, then those without an issuer.
    #[test]
    fn order_bundle_is_a_permutation_with_issuers_first(
        indices in prop::collection::vec(pool_index(), 0..=8),
    ) {
        let input = certs(&indices);
        let ordered = x509::order_bundle(input.clone());
        prop_assert!(openssl::error::ErrorStack::get().errors().is_empty());
        let (mut before, mut after) = (ders(&input), ders(&ordered));
        before.sort();
        after.sort();
        prop_assert_eq!(before, after, "not a permutation");

        let roots = ordered.iter().take_while(|c| x509::is_self_signed(c)).count();
        prop_assert_eq!(roots, ordered.iter().filter(|c| x509::is_self_signed(c)).count());
        // The placed prefix: roots, then certificates with an issuer earlier on.
        let mut placed = roots;
        while placed < ordered.len()
            && ordered[..placed].iter().any(|issuer| issued(&ordered[placed], issuer))
        {
            placed += 1;
        }
        // Nothing after it could have been placed.
        for cert in &ordered[placed..] {
            prop_assert!(
                !ordered[..placed].iter().any(|issuer| issued(cert, issuer)),
                "a certificate whose issuer was placed was left at the end"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// PKCS#7 envelopes around real chains.

/// A DER element.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        len if len < 0x80 => out.push(len as u8),
        len if len < 0x100 => out.extend([0x81, len as u8]),
        len => out.extend([0x82, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// Certificates-only SignedData around `certificates` with one envelope defect.
fn envelope(certificates: &[u8], defect: u8) -> Vec<u8> {
    const SIGNED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02];
    const DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01];
    let version = match defect {
        1 => vec![0x02, 0x02, 0x00, 0x01], // non-minimal INTEGER
        _ => vec![0x02, 0x01, 0x01],
    };
    let mut fields = version;
    if defect != 2 {
        fields.extend(tlv(0x31, &[])); // digestAlgorithms
    }
    if defect != 3 {
        fields.extend(tlv(0x30, &tlv(0x06, DATA))); // encapContentInfo
    }
    fields.extend(tlv(0xA0, certificates));
    if defect != 4 {
        fields.extend(tlv(0x31, &[])); // signerInfos
    }
    let signed = tlv(0x30, &fields);
    let mut content_info = tlv(0x06, SIGNED_DATA);
    content_info.extend(tlv(0xA0, &signed));
    let mut out = tlv(0x30, &content_info);
    if defect == 5 {
        out.push(0x00); // trailing byte
    }
    out
}

proptest! {
    #![proptest_config(config(48))]

    /// A PKCS#7 envelope the parser refuses (a non-canonical or incomplete SignedData
    /// around real certificates) must not share its cache key with the same certificates
    /// sent in a form that is accepted: `TrustStore::verify` looks the key up before
    /// parsing, so it would answer the refused request with the accepted one's verdict.
    #[test]
    fn refused_p7b_envelopes_do_not_share_a_cache_key(
        indices in prop::collection::vec(0usize..4, 1..=3),
        defect in 0u8..=5,
        url_safe in any::<bool>(),
    ) {
        let certs = certs(&indices);
        let certificates: Vec<u8> = ders(&certs).concat();
        let p7b = envelope(&certificates, defect);
        let data = if url_safe { URL_SAFE_NO_PAD.encode(&p7b) } else { pem_armour("PKCS7", &p7b) };
        checks::check_upload(&data);
        checks::check_verify(&data);
        prop_assert_ne!(
            x509::chain_key(DOMAIN, &data),
            x509::chain_key(DOMAIN, &pem_of(&ders(&certs))),
            "defect {} shares its key with the plain chain", defect
        );
    }
}
