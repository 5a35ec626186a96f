//! Differential test of path validation against the `openssl verify` command line: for
//! generated chains with exactly one fault each (expired or not-yet-valid links, missing
//! `CA:TRUE`, exceeded path lengths, wrong keyUsage, foreign roots, CAs of another domain,
//! authority/subject key identifier faults, weak keys and digests, ...) plus control chains
//! that both sides accept, the trust store under the `chain` policy must never trust what
//! `openssl verify -x509_strict -auth_level 2` refuses. The service may be stricter: such
//! cases are listed, not failed.
//!
//! The reference gets the same material the service has: the self-signed CA certificates of
//! the FTM domain as `-CAfile`, its other CA certificates plus the certificates sent along
//! with the leaf as `-untrusted`, no default trust locations and no partial chains.
//! Skipped (not failed) when no `openssl` binary is on the `PATH`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::LazyLock;
use std::time::Instant;

use chrono::Utc;
use openssl::x509::X509;

use certificate_store::domain::{TrustData, TrustPolicy};
use certificate_store::trust::{TrustSettings, TrustSnapshot};
use certificate_store::x509::is_self_signed;
use pmp_dev_certs::variants::{
    BasicConstraintsSpec, KeyIdentifier, Usage, VariantKey, VariantSpec, name_with_cn,
    tampered_signature,
};
use pmp_dev_certs::{CertKind, CertificateSpec, DigestSpec, Issued, KeySpec, X509Version};

/// The domain every case is verified in.
const DOMAIN: &str = "FTM";
/// The other domain, holding the CAs of the cross-domain cases.
const OTHER_DOMAIN: &str = "DEVICE";

/// Issuers shared by many cases, generated once (EC P-256 unless stated otherwise).
struct Base {
    /// Self-signed root of the FTM domain.
    root: Issued,
    /// Intermediate under `root`, path length 0.
    int: Issued,
    /// Intermediate under `root`, path length 1.
    int1: Issued,
    /// Intermediate under `int1`, path length 0.
    int2: Issued,
    /// RSA-2048 root, for RSA signatures (MD5, SHA-1 with RSA).
    rsa_root: Issued,
    /// RSA-PSS-2048 root signing with SHA-384.
    pss_root: Issued,
    /// A root unknown to every domain, and an intermediate under it.
    foreign_root: Issued,
    foreign_int: Issued,
    /// The DEVICE domain's root and intermediate.
    device_root: Issued,
    device_int: Issued,
}

static BASE: LazyLock<Base> = LazyLock::new(|| {
    let ec_ca = |cn: &str| {
        CertificateSpec::ca(cn)
            .organisation("Diff")
            .key(KeySpec::EcP256)
            .valid_from_days(-1)
            .valid_for_days(3650)
    };
    let root = ec_ca("Diff Root CA").self_signed().expect("root");
    let int = ec_ca("Diff Intermediate CA")
        .path_len(0)
        .issued_by(&root)
        .expect("int");
    let int1 = ec_ca("Diff Policy CA")
        .path_len(1)
        .issued_by(&root)
        .expect("int1");
    let int2 = ec_ca("Diff Issuing CA")
        .path_len(0)
        .issued_by(&int1)
        .expect("int2");
    let rsa_root = ec_ca("Diff RSA Root CA")
        .key(KeySpec::Rsa(2048))
        .self_signed()
        .expect("rsa root");
    let pss_root = ec_ca("Diff RSA-PSS Root CA")
        .key(KeySpec::RsaPss(2048))
        .digest(DigestSpec::Sha384)
        .self_signed()
        .expect("pss root");
    let foreign_root = ec_ca("Foreign Root CA")
        .self_signed()
        .expect("foreign root");
    let foreign_int = ec_ca("Foreign Intermediate CA")
        .path_len(0)
        .issued_by(&foreign_root)
        .expect("foreign int");
    let device_root = ec_ca("Device Root CA").self_signed().expect("device root");
    let device_int = ec_ca("Device Intermediate CA")
        .path_len(0)
        .issued_by(&device_root)
        .expect("device int");
    Base {
        root,
        int,
        int1,
        int2,
        rsa_root,
        pss_root,
        foreign_root,
        foreign_int,
        device_root,
        device_int,
    }
});

/// What `openssl verify` is expected to answer, so that a generator mistake (a "faulty"
/// chain that is in fact fine, or a control chain broken for another reason) shows up
/// instead of making the comparison vacuous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Accept,
    Refuse,
    /// Not pinned: OpenSSL's answer is recorded, whatever it is.
    Either,
}

struct Case {
    category: &'static str,
    name: String,
    expect: Expect,
    /// CA certificates uploaded to the FTM domain.
    ftm: Vec<Issued>,
    /// CA certificates uploaded to the DEVICE domain.
    device: Vec<Issued>,
    /// The certificate to verify.
    leaf: Issued,
    /// Certificates sent along with it (untrusted helpers).
    helpers: Vec<Issued>,
}

/// One side's answer.
#[derive(Debug, Clone)]
struct Outcome {
    accepted: bool,
    detail: String,
}

impl Outcome {
    fn label(&self) -> &'static str {
        if self.accepted { "accept" } else { "refuse" }
    }
}

fn ec_leaf(cn: &str) -> CertificateSpec {
    CertificateSpec::leaf(cn)
        .organisation("Diff")
        .key(KeySpec::EcP256)
}

fn ec_ca(cn: &str) -> CertificateSpec {
    CertificateSpec::ca(cn)
        .organisation("Diff")
        .key(KeySpec::EcP256)
}

/// Collects the cases; every certificate is generated here.
struct Table {
    cases: Vec<Case>,
}

impl Table {
    fn add(
        &mut self,
        category: &'static str,
        name: &str,
        expect: Expect,
        ftm: &[&Issued],
        leaf: Issued,
        helpers: &[&Issued],
    ) -> &mut Case {
        self.cases.push(Case {
            category,
            name: name.to_owned(),
            expect,
            ftm: ftm.iter().map(|c| (*c).clone()).collect(),
            device: Vec::new(),
            leaf,
            helpers: helpers.iter().map(|c| (*c).clone()).collect(),
        });
        self.cases.last_mut().expect("just pushed")
    }
}

impl Case {
    fn device(&mut self, device: &[&Issued]) {
        self.device = device.iter().map(|c| (*c).clone()).collect();
    }
}

#[allow(clippy::too_many_lines)]
fn cases() -> Vec<Case> {
    use Expect::{Accept, Either, Refuse};
    let b = &*BASE;
    let (root, int) = (&b.root, &b.int);
    let std_cas = [root, int];
    let mut t = Table { cases: Vec::new() };
    let leaf_of = |issuer: &Issued| ec_leaf("Diff Partner").issued_by(issuer).expect("leaf");
    let vleaf_of = |issuer: &Issued| {
        VariantSpec::leaf("Diff Partner")
            .issued_by(issuer)
            .expect("leaf")
    };

    // ------------------------------------------------------------------ controls
    let c = "control";
    t.add(
        c,
        "root -> intermediate -> leaf, both CAs in the store",
        Accept,
        &std_cas,
        leaf_of(int),
        &[],
    );
    t.add(
        c,
        "intermediate supplied as helper only",
        Accept,
        &[root],
        leaf_of(int),
        &[int],
    );
    t.add(
        c,
        "leaf issued directly by the root",
        Accept,
        &[root],
        leaf_of(root),
        &[],
    );
    t.add(
        c,
        "root -> pathLen 1 -> pathLen 0 -> leaf, all in the store",
        Accept,
        &[root, &b.int1, &b.int2],
        leaf_of(&b.int2),
        &[],
    );
    t.add(
        c,
        "two intermediates supplied as helpers, top first",
        Accept,
        &[root],
        leaf_of(&b.int2),
        &[&b.int1, &b.int2],
    );
    t.add(
        c,
        "trusted root and intermediate repeated as helpers",
        Accept,
        &std_cas,
        leaf_of(int),
        &[root, int],
    );
    let pss_leaf = ec_leaf("PSS Partner")
        .digest(DigestSpec::Sha384)
        .issued_by(&b.pss_root)
        .expect("pss leaf");
    t.add(
        c,
        "RSA-PSS-2048 root signing with SHA-384",
        Accept,
        &[&b.pss_root],
        pss_leaf,
        &[],
    );
    let rsa_leaf = ec_leaf("RSA-signed Partner")
        .issued_by(&b.rsa_root)
        .expect("rsa leaf");
    t.add(
        c,
        "RSA-2048 root, sha256WithRSAEncryption",
        Accept,
        &[&b.rsa_root],
        rsa_leaf,
        &[],
    );
    let root384 = ec_ca("P-384 Root CA")
        .key(KeySpec::EcP384)
        .digest(DigestSpec::Sha512)
        .self_signed()
        .expect("p384");
    let leaf384 = ec_leaf("P-384 Partner")
        .key(KeySpec::EcP384)
        .digest(DigestSpec::Sha512)
        .issued_by(&root384)
        .expect("leaf");
    t.add(
        c,
        "P-384 chain signed with SHA-512",
        Accept,
        &[&root384],
        leaf384,
        &[],
    );
    let ed_root = ec_ca("Ed25519 Root CA")
        .key(KeySpec::Ed25519)
        .self_signed()
        .expect("ed root");
    let ed_leaf = ec_leaf("Ed25519 Partner")
        .key(KeySpec::Ed25519)
        .issued_by(&ed_root)
        .expect("ed leaf");
    t.add(c, "Ed25519 chain", Accept, &[&ed_root], ed_leaf, &[]);
    t.add(
        c,
        "leaf signed with SHA-224 (112-bit, allowed at level 2)",
        Accept,
        &std_cas,
        ec_leaf("SHA-224 Partner")
            .digest(DigestSpec::Sha224)
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    t.add(
        c,
        "leaf key EC P-224 (112-bit, allowed at level 2)",
        Accept,
        &std_cas,
        ec_leaf("P-224 Partner")
            .key(KeySpec::EcP224)
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    let sha1_root = ec_ca("SHA-1 Self-signed Root CA")
        .digest(DigestSpec::Sha1)
        .self_signed()
        .expect("root");
    t.add(
        c,
        "root's own self-signature uses SHA-1 (anchor signature not checked)",
        Accept,
        &[&sha1_root],
        leaf_of(&sha1_root),
        &[],
    );
    let short_int = ec_ca("Short-lived Intermediate CA")
        .path_len(0)
        .valid_for_days(30)
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "leaf outlives its intermediate (validity not nested)",
        Accept,
        &[root, &short_int],
        ec_leaf("Long Partner")
            .valid_for_days(365)
            .issued_by(&short_int)
            .expect("leaf"),
        &[],
    );
    t.add(
        c,
        "v3 leaf without basicConstraints and keyUsage",
        Accept,
        &std_cas,
        ec_leaf("Plain Partner")
            .kind(CertKind::NoConstraints)
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    let random_ski_int = VariantSpec::ca("Random SKI CA")
        .path_len(0)
        .subject_key_id(KeyIdentifier::Bytes(vec![0x5a; 8]))
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "non-hash key identifiers that match (SKI = 5a*8, leaf AKI = 5a*8)",
        Accept,
        &[root, &random_ski_int],
        vleaf_of(&random_ski_int),
        &[],
    );
    t.add(
        c,
        "leaf keyUsage keyEncipherment only (no purpose is checked)",
        Accept,
        &std_cas,
        VariantSpec::leaf("KE Partner")
            .key_usage(Some(&[Usage::KeyEncipherment]))
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    t.add(
        c,
        "leaf with an unknown non-critical extension",
        Accept,
        &std_cas,
        VariantSpec::leaf("Ext Partner")
            .unknown_extension(false)
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    let mut spec = VariantSpec::ca("Non-critical keyUsage CA").path_len(0);
    if let Some(ku) = spec.key_usage.as_mut() {
        ku.critical = false;
    }
    let noncrit_ku_int = spec.issued_by(root).expect("int");
    t.add(
        c,
        "intermediate with non-critical keyUsage (RFC 5280 SHOULD only)",
        Either,
        &[root, &noncrit_ku_int],
        vleaf_of(&noncrit_ku_int),
        &[],
    );
    t.add(
        c,
        "the trusted root itself as the certificate to verify",
        Either,
        &std_cas,
        root.clone(),
        &[],
    );
    t.add(
        c,
        "v1 leaf (no extensions) under the intermediate",
        Either,
        &std_cas,
        VariantSpec::leaf("V1 Partner")
            .version(X509Version::V1)
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    let v1_root = VariantSpec::ca("V1 Root CA")
        .version(X509Version::V1)
        .self_signed()
        .expect("v1 root");
    t.add(
        c,
        "v1 self-signed root issuing a v3 leaf",
        Either,
        &[&v1_root],
        vleaf_of(&v1_root),
        &[],
    );
    t.add(
        c,
        "unrelated certificates among the helpers",
        Accept,
        &std_cas,
        leaf_of(int),
        &[&b.foreign_int, &b.device_root, int],
    );
    let expired_copy = ec_ca("Diff Intermediate CA")
        .path_len(0)
        .valid_from_days(-30)
        .valid_for_days(10)
        .sign(int.private_key.clone(), Some(root))
        .expect("expired copy");
    t.add(
        c,
        "expired re-issue of the intermediate (same key) as helper, valid one in the store",
        Accept,
        &std_cas,
        leaf_of(int),
        &[&expired_copy],
    );
    let self_signed_ee = ec_leaf("Self-signed Partner uploaded as CA")
        .self_signed()
        .expect("ee");
    t.add(
        c,
        "self-signed end entity uploaded as CA, verified itself",
        Either,
        &[root, &self_signed_ee],
        self_signed_ee.clone(),
        &[],
    );
    let helpers = [int; 10];
    t.add(
        "limits",
        "11 certificates sent (leaf + the intermediate 10 times)",
        Accept,
        &std_cas,
        leaf_of(int),
        &helpers,
    );

    // ------------------------------------------------------------------ validity
    let c = "validity";
    t.add(
        c,
        "leaf expired 20 days ago",
        Refuse,
        &std_cas,
        ec_leaf("Expired Partner")
            .valid_from_days(-30)
            .valid_for_days(10)
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    t.add(
        c,
        "leaf not yet valid (from tomorrow)",
        Refuse,
        &std_cas,
        ec_leaf("Future Partner")
            .valid_from_days(1)
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    t.add(
        c,
        "leaf not yet valid (from in 2 minutes)",
        Refuse,
        &std_cas,
        ec_leaf("Soon Partner")
            .valid_from_seconds(120)
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    t.add(
        c,
        "leaf with inverted window (notBefore tomorrow, notAfter yesterday)",
        Refuse,
        &std_cas,
        ec_leaf("Inverted Partner")
            .valid_from_days(1)
            .valid_for_days(-2)
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    let expired_int = ec_ca("Expired Intermediate CA")
        .path_len(0)
        .valid_from_days(-30)
        .valid_for_days(10)
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "intermediate (in the store) expired",
        Refuse,
        &[root, &expired_int],
        leaf_of(&expired_int),
        &[],
    );
    let future_int = ec_ca("Future Intermediate CA")
        .path_len(0)
        .valid_from_days(1)
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "intermediate (helper) not yet valid",
        Refuse,
        &[root],
        leaf_of(&future_int),
        &[&future_int],
    );
    let expired_root = ec_ca("Expired Root CA")
        .valid_from_days(-30)
        .valid_for_days(10)
        .self_signed()
        .expect("root");
    t.add(
        c,
        "root expired",
        Refuse,
        &[&expired_root],
        leaf_of(&expired_root),
        &[],
    );
    let future_root = ec_ca("Future Root CA")
        .valid_from_days(1)
        .self_signed()
        .expect("root");
    t.add(
        c,
        "root not yet valid",
        Refuse,
        &[&future_root],
        leaf_of(&future_root),
        &[],
    );

    // ------------------------------------------------------------------ missing CA:TRUE
    let c = "ca-flag";
    let leaf_as_int = ec_leaf("End Entity Acting As CA")
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "issuer is an end entity (CA:FALSE, keyUsage digitalSignature)",
        Refuse,
        &[root, &leaf_as_int],
        vleaf_of(&leaf_as_int),
        &[],
    );
    let ca_false_int = VariantSpec::ca("CA:FALSE Intermediate")
        .basic_constraints(Some(BasicConstraintsSpec {
            critical: true,
            ca: false,
            path_len: None,
        }))
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "intermediate with CA:FALSE but keyCertSign",
        Refuse,
        &[root, &ca_false_int],
        vleaf_of(&ca_false_int),
        &[],
    );
    let no_bc_int = ec_ca("No Constraints Intermediate")
        .kind(CertKind::NoConstraints)
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "intermediate without basicConstraints nor keyUsage",
        Refuse,
        &[root, &no_bc_int],
        vleaf_of(&no_bc_int),
        &[],
    );
    let no_bc_kcs_int = VariantSpec::ca("No BC keyCertSign Intermediate")
        .basic_constraints(None)
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "intermediate without basicConstraints, with keyCertSign",
        Refuse,
        &[root, &no_bc_kcs_int],
        vleaf_of(&no_bc_kcs_int),
        &[],
    );
    let v1_int = VariantSpec::ca("V1 Intermediate")
        .version(X509Version::V1)
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "v1 intermediate (no basicConstraints possible)",
        Refuse,
        &[root],
        vleaf_of(&v1_int),
        &[&v1_int],
    );
    let ca_false_root = VariantSpec::ca("CA:FALSE Root")
        .basic_constraints(Some(BasicConstraintsSpec {
            critical: true,
            ca: false,
            path_len: None,
        }))
        .self_signed()
        .expect("root");
    t.add(
        c,
        "self-signed root with CA:FALSE issuing a leaf",
        Refuse,
        &[&ca_false_root],
        vleaf_of(&ca_false_root),
        &[],
    );
    let noncrit_bc_int = VariantSpec::ca("Non-critical BC Intermediate")
        .basic_constraints(Some(BasicConstraintsSpec {
            critical: false,
            ca: true,
            path_len: Some(0),
        }))
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "intermediate with non-critical basicConstraints CA:TRUE",
        Refuse,
        &[root, &noncrit_bc_int],
        vleaf_of(&noncrit_bc_int),
        &[],
    );

    // ------------------------------------------------------------------ path length
    let c = "pathlen";
    let root_p0 = VariantSpec::ca("PathLen 0 Root")
        .path_len(0)
        .self_signed()
        .expect("root");
    let int_under_p0 = VariantSpec::ca("Under PathLen 0 Root")
        .path_len(0)
        .issued_by(&root_p0)
        .expect("int");
    t.add(
        c,
        "root pathLen 0 -> intermediate -> leaf",
        Refuse,
        &[&root_p0, &int_under_p0],
        vleaf_of(&int_under_p0),
        &[],
    );
    let sub_ca = VariantSpec::ca("Sub CA under pathLen 0")
        .issued_by(int)
        .expect("sub");
    t.add(
        c,
        "intermediate pathLen 0 -> sub-CA (in the store) -> leaf",
        Refuse,
        &[root, int, &sub_ca],
        vleaf_of(&sub_ca),
        &[],
    );
    t.add(
        c,
        "intermediate pathLen 0 -> sub-CA (helper) -> leaf",
        Refuse,
        &std_cas,
        vleaf_of(&sub_ca),
        &[&sub_ca],
    );
    let root_p1 = VariantSpec::ca("PathLen 1 Root")
        .path_len(1)
        .self_signed()
        .expect("root");
    let p1_a = VariantSpec::ca("PathLen 1 Level A")
        .issued_by(&root_p1)
        .expect("a");
    let p1_b = VariantSpec::ca("PathLen 1 Level B")
        .issued_by(&p1_a)
        .expect("b");
    t.add(
        c,
        "root pathLen 1 -> two intermediates (helpers) -> leaf",
        Refuse,
        &[&root_p1],
        vleaf_of(&p1_b),
        &[&p1_a, &p1_b],
    );
    let ca_leaf = VariantSpec::ca("CA-flagged Partner")
        .path_len(0)
        .issued_by(int)
        .expect("ca leaf");
    t.add(
        c,
        "partner certificate with CA:TRUE under pathLen 0, issuing an end entity",
        Refuse,
        &std_cas,
        vleaf_of(&ca_leaf),
        &[&ca_leaf],
    );
    t.add(
        c,
        "CA:TRUE partner certificate under pathLen 0 verified itself (allowed by RFC 5280)",
        Either,
        &std_cas,
        ca_leaf.clone(),
        &[],
    );
    t.add(
        c,
        "end entity with pathLen but CA:FALSE",
        Refuse,
        &std_cas,
        VariantSpec::leaf("PathLen Partner")
            .basic_constraints(Some(BasicConstraintsSpec {
                critical: true,
                ca: false,
                path_len: Some(0),
            }))
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    let pl_no_kcs = VariantSpec::ca("PathLen without keyCertSign CA")
        .path_len(0)
        .key_usage(Some(&[Usage::DigitalSignature, Usage::CrlSign]))
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "CA with pathLen but without keyCertSign",
        Refuse,
        &[root, &pl_no_kcs],
        vleaf_of(&pl_no_kcs),
        &[],
    );

    // ------------------------------------------------------------------ keyUsage
    let c = "key-usage";
    let no_kcs_int = VariantSpec::ca("No keyCertSign Intermediate")
        .key_usage(Some(&[Usage::DigitalSignature, Usage::CrlSign]))
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "intermediate without keyCertSign (no pathLen)",
        Refuse,
        &[root, &no_kcs_int],
        vleaf_of(&no_kcs_int),
        &[],
    );
    let no_ku_int = VariantSpec::ca("No keyUsage Intermediate")
        .key_usage(None)
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "intermediate CA without keyUsage extension",
        Refuse,
        &[root, &no_ku_int],
        vleaf_of(&no_ku_int),
        &[],
    );
    let no_kcs_root = VariantSpec::ca("No keyCertSign Root")
        .key_usage(Some(&[Usage::DigitalSignature, Usage::CrlSign]))
        .self_signed()
        .expect("root");
    t.add(
        c,
        "root without keyCertSign",
        Refuse,
        &[&no_kcs_root],
        vleaf_of(&no_kcs_root),
        &[],
    );
    t.add(
        c,
        "end entity with keyCertSign",
        Refuse,
        &std_cas,
        VariantSpec::leaf("KCS Partner")
            .key_usage(Some(&[Usage::DigitalSignature, Usage::KeyCertSign]))
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    let crl_only_int = VariantSpec::ca("CRL-only Intermediate")
        .path_len(0)
        .key_usage(Some(&[Usage::CrlSign]))
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "intermediate keyUsage cRLSign only (helper)",
        Refuse,
        &[root],
        vleaf_of(&crl_only_int),
        &[&crl_only_int],
    );

    // ------------------------------------------------------------------ foreign roots
    let c = "foreign";
    t.add(
        c,
        "unknown root, full chain supplied as helpers",
        Refuse,
        &std_cas,
        leaf_of(&b.foreign_int),
        &[&b.foreign_int, &b.foreign_root],
    );
    t.add(
        c,
        "unknown root, no helpers",
        Refuse,
        &std_cas,
        leaf_of(&b.foreign_int),
        &[],
    );
    let impostor_root = ec_ca("Diff Root CA")
        .valid_from_days(-1)
        .self_signed()
        .expect("impostor root");
    t.add(
        c,
        "impostor root with the trusted root's name (helper) issuing the leaf",
        Refuse,
        &std_cas,
        leaf_of(&impostor_root),
        &[&impostor_root],
    );
    let impostor_int = ec_ca("Diff Intermediate CA")
        .path_len(0)
        .valid_from_days(-1)
        .issued_by(&impostor_root)
        .expect("impostor int");
    t.add(
        c,
        "impostor intermediate with the trusted intermediate's name (helper)",
        Refuse,
        &std_cas,
        leaf_of(&impostor_int),
        &[&impostor_int],
    );
    t.add(
        c,
        "self-signed end entity",
        Refuse,
        &std_cas,
        ec_leaf("Self-signed Partner").self_signed().expect("leaf"),
        &[],
    );
    t.add(
        c,
        "trusted chain's root not uploaded, supplied as helper",
        Refuse,
        &[&b.foreign_root],
        leaf_of(int),
        &[int, root],
    );
    t.add(
        c,
        "unknown self-signed CA as the certificate to verify",
        Refuse,
        &std_cas,
        b.foreign_root.clone(),
        &[],
    );
    t.add(
        c,
        "intermediate in the store whose root is not",
        Refuse,
        &[root, int, &b.foreign_int],
        leaf_of(&b.foreign_int),
        &[],
    );

    // ------------------------------------------------------------------ cross-domain
    let c = "cross-domain";
    let device_cas = [&b.device_root, &b.device_int];
    t.add(
        c,
        "leaf of a DEVICE chain, no helpers",
        Refuse,
        &std_cas,
        leaf_of(&b.device_int),
        &[],
    )
    .device(&device_cas);
    t.add(
        c,
        "leaf of a DEVICE chain, DEVICE intermediate and root as helpers",
        Refuse,
        &std_cas,
        leaf_of(&b.device_int),
        &[&b.device_int, &b.device_root],
    )
    .device(&device_cas);
    t.add(
        c,
        "FTM without any CA, leaf of a DEVICE chain with its intermediate",
        Refuse,
        &[],
        leaf_of(&b.device_int),
        &[&b.device_int],
    )
    .device(&device_cas);
    let cross_int = ec_ca("Cross-domain Intermediate CA")
        .path_len(0)
        .issued_by(root)
        .expect("cross int");
    t.add(
        c,
        "intermediate under the FTM root uploaded to DEVICE only, not supplied",
        Refuse,
        &[root],
        leaf_of(&cross_int),
        &[],
    )
    .device(&[&b.device_root, &cross_int]);
    t.add(
        c,
        "intermediate under the FTM root uploaded to DEVICE only, supplied as helper",
        Accept,
        &[root],
        leaf_of(&cross_int),
        &[&cross_int],
    )
    .device(&[&b.device_root, &cross_int]);
    t.add(
        c,
        "root uploaded to DEVICE, its intermediate to FTM",
        Refuse,
        &[int],
        leaf_of(int),
        &[],
    )
    .device(&[root]);

    // ------------------------------------------------------------------ key identifiers
    let c = "aki-ski";
    t.add(
        c,
        "leaf AKI does not match the intermediate's SKI",
        Refuse,
        &std_cas,
        VariantSpec::leaf("Wrong AKI Partner")
            .authority_key_id(KeyIdentifier::Bytes(vec![0xab; 20]))
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    t.add(
        c,
        "leaf without AKI",
        Refuse,
        &std_cas,
        VariantSpec::leaf("No AKI Partner")
            .authority_key_id(KeyIdentifier::Absent)
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    let wrong_aki_int = VariantSpec::ca("Wrong AKI Intermediate")
        .path_len(0)
        .authority_key_id(KeyIdentifier::Bytes(vec![0xcd; 20]))
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "intermediate AKI does not match the root's SKI",
        Refuse,
        &[root, &wrong_aki_int],
        vleaf_of(&wrong_aki_int),
        &[],
    );
    let no_aki_int = VariantSpec::ca("No AKI Intermediate")
        .path_len(0)
        .authority_key_id(KeyIdentifier::Absent)
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "intermediate without AKI",
        Refuse,
        &[root, &no_aki_int],
        vleaf_of(&no_aki_int),
        &[],
    );
    let no_ski_int = VariantSpec::ca("No SKI Intermediate")
        .path_len(0)
        .subject_key_id(KeyIdentifier::Absent)
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "intermediate CA without SKI (leaf AKI = key hash)",
        Refuse,
        &[root, &no_ski_int],
        vleaf_of(&no_ski_int),
        &[],
    );
    let no_ski_root = VariantSpec::ca("No SKI Root")
        .subject_key_id(KeyIdentifier::Absent)
        .self_signed()
        .expect("root");
    t.add(
        c,
        "root CA without SKI (leaf AKI = key hash)",
        Either,
        &[&no_ski_root],
        vleaf_of(&no_ski_root),
        &[],
    );
    t.add(
        c,
        "leaf with critical AKI",
        Refuse,
        &std_cas,
        VariantSpec::leaf("Critical AKI Partner")
            .authority_key_id_critical()
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    let crit_ski_int = VariantSpec::ca("Critical SKI Intermediate")
        .path_len(0)
        .subject_key_id_critical()
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "intermediate with critical SKI",
        Refuse,
        &[root, &crit_ski_int],
        vleaf_of(&crit_ski_int),
        &[],
    );
    let other_key = KeySpec::EcP256.generate().expect("key");
    t.add(
        c,
        "leaf names the intermediate (name and AKI) but another key signed it",
        Refuse,
        &std_cas,
        VariantSpec::leaf("Forged Partner")
            .issued_by_forged(int, &other_key)
            .expect("leaf"),
        &[],
    );
    t.add(
        c,
        "leaf AKI matches but its issuer name is another",
        Refuse,
        &std_cas,
        VariantSpec::leaf("Misnamed Partner")
            .issuer_name(&name_with_cn("Someone Else").expect("name"))
            .expect("name")
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    let empty_int = VariantSpec::ca("x")
        .empty_subject()
        .path_len(0)
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "intermediate with an empty subject (leaf issuer empty)",
        Refuse,
        &[root, &empty_int],
        vleaf_of(&empty_int),
        &[],
    );

    // ------------------------------------------------------------------ weak keys / digests
    let c = "weak";
    t.add(
        c,
        "leaf key RSA-1024",
        Refuse,
        &std_cas,
        ec_leaf("RSA-1024 Partner")
            .key(KeySpec::Rsa(1024))
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    let rsa1024_int = ec_ca("RSA-1024 Intermediate")
        .key(KeySpec::Rsa(1024))
        .path_len(0)
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "intermediate key RSA-1024",
        Refuse,
        &[root, &rsa1024_int],
        leaf_of(&rsa1024_int),
        &[],
    );
    let rsa1024_root = ec_ca("RSA-1024 Root")
        .key(KeySpec::Rsa(1024))
        .self_signed()
        .expect("root");
    t.add(
        c,
        "root key RSA-1024",
        Refuse,
        &[&rsa1024_root],
        leaf_of(&rsa1024_root),
        &[],
    );
    t.add(
        c,
        "leaf key EC P-192",
        Refuse,
        &std_cas,
        VariantSpec::leaf("P-192 Partner")
            .key(VariantKey::EcP192)
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    t.add(
        c,
        "leaf key EC P-256 with explicit curve parameters",
        Refuse,
        &std_cas,
        VariantSpec::leaf("Explicit Partner")
            .key(VariantKey::EcP256ExplicitParameters)
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    let explicit_int = VariantSpec::ca("Explicit Parameters Intermediate")
        .path_len(0)
        .key(VariantKey::EcP256ExplicitParameters)
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "intermediate key with explicit curve parameters",
        Refuse,
        &[root, &explicit_int],
        vleaf_of(&explicit_int),
        &[],
    );
    t.add(
        c,
        "leaf signed ecdsa-with-SHA1",
        Refuse,
        &std_cas,
        ec_leaf("SHA-1 Partner")
            .digest(DigestSpec::Sha1)
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    t.add(
        c,
        "leaf signed md5WithRSAEncryption",
        Refuse,
        &[&b.rsa_root],
        ec_leaf("MD5 Partner")
            .digest(DigestSpec::Md5)
            .issued_by(&b.rsa_root)
            .expect("leaf"),
        &[],
    );
    t.add(
        c,
        "leaf signed sha1WithRSAEncryption",
        Refuse,
        &[&b.rsa_root],
        ec_leaf("SHA-1 RSA Partner")
            .digest(DigestSpec::Sha1)
            .issued_by(&b.rsa_root)
            .expect("leaf"),
        &[],
    );
    t.add(
        c,
        "leaf signed RSASSA-PSS with SHA-1",
        Refuse,
        &[&b.pss_root],
        ec_leaf("PSS SHA-1 Partner")
            .digest(DigestSpec::Sha1)
            .issued_by(&b.pss_root)
            .expect("leaf"),
        &[],
    );
    let sha1_int = ec_ca("SHA-1 Signed Intermediate")
        .path_len(0)
        .digest(DigestSpec::Sha1)
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "intermediate signed with SHA-1",
        Refuse,
        &[root, &sha1_int],
        leaf_of(&sha1_int),
        &[],
    );

    // ------------------------------------------------------------------ other faults
    let c = "other";
    t.add(
        c,
        "leaf with an unknown critical extension",
        Refuse,
        &std_cas,
        VariantSpec::leaf("Critical Ext Partner")
            .unknown_extension(true)
            .issued_by(int)
            .expect("leaf"),
        &[],
    );
    let crit_ext_int = VariantSpec::ca("Critical Ext Intermediate")
        .path_len(0)
        .unknown_extension(true)
        .issued_by(root)
        .expect("int");
    t.add(
        c,
        "intermediate with an unknown critical extension",
        Refuse,
        &[root, &crit_ext_int],
        vleaf_of(&crit_ext_int),
        &[],
    );
    t.add(
        c,
        "leaf signature corrupted",
        Refuse,
        &std_cas,
        tampered_signature(&leaf_of(int)).expect("tampered"),
        &[],
    );
    let tampered_int = tampered_signature(
        &ec_ca("Tampered Intermediate")
            .path_len(0)
            .issued_by(root)
            .expect("int"),
    )
    .expect("tampered");
    t.add(
        c,
        "intermediate (helper) signature corrupted",
        Refuse,
        &[root],
        leaf_of(&tampered_int),
        &[&tampered_int],
    );

    t.cases
}

/// `openssl verify -x509_strict -auth_level 2` with the domain's roots as the only anchors.
fn openssl_verify(
    dir: &Path,
    index: usize,
    roots: &[X509],
    untrusted: &[X509],
    leaf: &X509,
) -> Outcome {
    let write = |name: &str, certs: &[&X509]| {
        let path = dir.join(format!("{index:03}-{name}.pem"));
        let pem: Vec<u8> = certs
            .iter()
            .flat_map(|c| c.to_pem().expect("pem"))
            .collect();
        std::fs::write(&path, pem).expect("write pem");
        path
    };
    let mut command = Command::new("openssl");
    command.args([
        "verify",
        "-x509_strict",
        "-auth_level",
        "2",
        "-no-CApath",
        "-no-CAstore",
    ]);
    if roots.is_empty() {
        command.arg("-no-CAfile");
    } else {
        command
            .arg("-CAfile")
            .arg(write("roots", &roots.iter().collect::<Vec<_>>()));
    }
    if !untrusted.is_empty() {
        command
            .arg("-untrusted")
            .arg(write("untrusted", &untrusted.iter().collect::<Vec<_>>()));
    }
    let leaf_path = write("leaf", &[leaf]);
    command.arg(&leaf_path);
    let output = command.output().expect("run openssl verify");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let accepted = output.status.success()
        && stdout
            .lines()
            .any(|line| line == format!("{}: OK", leaf_path.display()));
    let detail = if accepted {
        String::from("OK")
    } else {
        // "error 20 at 0 depth lookup: unable to get local issuer certificate"
        stderr
            .lines()
            .chain(stdout.lines())
            .find_map(|line| {
                let (_, rest) = line.split_once("error ")?;
                let (code_depth, message) = rest.split_once(" lookup: ")?;
                let (code, depth) = code_depth.split_once(" at ")?;
                Some(format!("{message} (error {code}, {depth})"))
            })
            .unwrap_or_else(|| format!("exit {:?}: {}", output.status.code(), stderr.trim()))
    };
    Outcome { accepted, detail }
}

fn pem(issued: &Issued) -> String {
    issued.pem().expect("pem")
}

/// The trust store's verdict for the case, under the `chain` policy in both domains.
fn service_verdict(case: &Case) -> Outcome {
    let ca_certificates = case
        .ftm
        .iter()
        .map(|c| (DOMAIN.to_owned(), pem(c)))
        .chain(
            case.device
                .iter()
                .map(|c| (OTHER_DOMAIN.to_owned(), pem(c))),
        )
        .collect();
    let data = TrustData {
        version: 1,
        ca_certificates,
        stored_certificates: vec![],
        deactivated_partners: vec![],
        revoked: vec![],
    };
    let settings = TrustSettings {
        domains: vec![DOMAIN.into(), OTHER_DOMAIN.into()],
        policies: [
            (DOMAIN.into(), TrustPolicy::Chain),
            (OTHER_DOMAIN.into(), TrustPolicy::Chain),
        ]
        .into_iter()
        .collect(),
        cache_bytes: 16 << 20,
    };
    let snapshot = match TrustSnapshot::build(&data, &settings) {
        Ok(snapshot) => snapshot,
        Err(error) => {
            return Outcome {
                accepted: false,
                detail: format!("snapshot not built: {error}"),
            };
        }
    };
    let input: String = std::iter::once(&case.leaf)
        .chain(&case.helpers)
        .map(pem)
        .collect();
    match snapshot.evaluate(DOMAIN, &input, Utc::now()) {
        Ok((verdict, _)) if verdict.trusted => {
            // Never a partial chain: the path ends at a self-signed CA of the domain.
            let anchor = verdict
                .chain_pem
                .last()
                .map(|p| X509::from_pem(p.as_bytes()).expect("chain pem"));
            let anchored = anchor.is_some_and(|anchor| {
                is_self_signed(&anchor)
                    && case.ftm.iter().any(|ca| {
                        ca.certificate.to_der().expect("der") == anchor.to_der().expect("der")
                    })
            });
            Outcome {
                accepted: true,
                detail: if anchored {
                    format!("trusted, path of {}", verdict.chain_pem.len())
                } else {
                    format!(
                        "trusted, but the path does not end at a root of {DOMAIN} ({} certificates)",
                        verdict.chain_pem.len()
                    )
                },
            }
        }
        Ok((verdict, _)) => Outcome {
            accepted: false,
            detail: verdict.reason,
        },
        Err(error) => Outcome {
            accepted: false,
            detail: format!("error: {error}"),
        },
    }
}

fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|output| output.status.success())
}

#[test]
fn chain_policy_never_trusts_what_openssl_verify_x509_strict_refuses() {
    if !openssl_available() {
        eprintln!("SKIPPED: no `openssl` binary on the PATH; the differential test needs it");
        return;
    }
    let started = Instant::now();
    let cases = cases();
    let generated = started.elapsed();
    let dir = tempfile::tempdir().expect("tempdir");

    let mut table = String::new();
    let mut lenient = Vec::new();
    let mut stricter = Vec::new();
    let mut unexpected = Vec::new();
    let mut unanchored = Vec::new();
    let (mut both_accept, mut both_refuse) = (0, 0);
    for (index, case) in cases.iter().enumerate() {
        let (roots, intermediates): (Vec<X509>, Vec<X509>) = case
            .ftm
            .iter()
            .map(|c| c.certificate.clone())
            .partition(|c| is_self_signed(c));
        let untrusted: Vec<X509> = intermediates
            .into_iter()
            .chain(case.helpers.iter().map(|c| c.certificate.clone()))
            .collect();
        let reference = openssl_verify(
            dir.path(),
            index,
            &roots,
            &untrusted,
            &case.leaf.certificate,
        );
        let service = service_verdict(case);
        let label = format!("#{index:02} [{}] {}", case.category, case.name);

        let agreement = match (reference.accepted, service.accepted) {
            (true, true) => {
                both_accept += 1;
                "agree"
            }
            (false, false) => {
                both_refuse += 1;
                "agree"
            }
            (true, false) => {
                stricter.push(format!("{label}: service: {}", service.detail));
                "SERVICE STRICTER"
            }
            (false, true) => {
                lenient.push(format!(
                    "{label}: openssl verify refuses ({}) but the service trusts it ({})",
                    reference.detail, service.detail
                ));
                "SERVICE MORE LENIENT (BUG)"
            }
        };
        if service.accepted && !service.detail.starts_with("trusted, path") {
            unanchored.push(format!("{label}: {}", service.detail));
        }
        let expected = match case.expect {
            Expect::Accept => Some(true),
            Expect::Refuse => Some(false),
            Expect::Either => None,
        };
        if expected.is_some_and(|e| e != reference.accepted) {
            unexpected.push(format!(
                "{label}: expected openssl verify to {} but it answered {}",
                if case.expect == Expect::Accept {
                    "accept"
                } else {
                    "refuse"
                },
                reference.detail
            ));
        }
        writeln!(
            table,
            "{label}\n      openssl: {:<6} {}\n      service: {:<6} {}\n      => {agreement}",
            reference.label(),
            reference.detail,
            service.label(),
            service.detail,
        )
        .expect("write");
    }
    eprintln!(
        "differential path validation: service (chain policy) vs `openssl verify -x509_strict -auth_level 2`\n"
    );
    eprintln!("{table}");
    eprintln!(
        "{} cases: {both_accept} both accept, {both_refuse} both refuse, {} service stricter, {} service more lenient; generated in {:.1?}, total {:.1?}",
        cases.len(),
        stricter.len(),
        lenient.len(),
        generated,
        started.elapsed()
    );
    if !stricter.is_empty() {
        eprintln!(
            "\nservice stricter than openssl (allowed):\n  {}",
            stricter.join("\n  ")
        );
    }

    assert!(cases.len() >= 40, "only {} cases", cases.len());
    assert!(
        lenient.is_empty(),
        "the service trusts what `openssl verify -x509_strict` refuses:\n  {}",
        lenient.join("\n  ")
    );
    assert!(
        unanchored.is_empty(),
        "trusted without a path to a root of {DOMAIN}:\n  {}",
        unanchored.join("\n  ")
    );
    assert!(
        unexpected.is_empty(),
        "generated cases do not exercise what they claim (openssl's answer differs from the case's expectation):\n  {}",
        unexpected.join("\n  ")
    );
}
