//! Test and development certificates, generated at run time.
//!
//! The certificate store's rules (version, key size, signature algorithm, validity windows,
//! CA flags, chains) can only be tested with certificates that have exactly one property
//! wrong. Files checked into the repository would expire, leak private keys and hide what
//! each certificate is for; this crate instead builds every certificate from a declarative
//! [`CertificateSpec`] when a test (or `pmpctl dev certs`) needs it.
//!
//! ```
//! use pmp_dev_certs::{CertificateSpec, DevPki, DigestSpec};
//!
//! let pki = DevPki::generate("Acme Chips").expect("dev PKI");
//! // One fault only: a partner certificate signed with SHA-1.
//! let weak = CertificateSpec::leaf("weak")
//!     .organisation("Acme Chips")
//!     .digest(DigestSpec::Sha1)
//!     .issued_by(&pki.intermediate)
//!     .expect("certificate");
//! assert_eq!(weak.certificate.version(), 2);
//! ```
//!
//! Nothing here is meant for production key material: keys are unencrypted and serials are
//! random, with no persistence.

#![warn(missing_docs, unreachable_pub)]

pub mod attacks;

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509NameBuilder};
pub mod tls;
pub mod variants;

/// Seconds in a day, for the day-based validity helpers.
const DAY: i64 = 86_400;

/// Why a certificate could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum DevCertError {
    /// OpenSSL refused an operation (unsupported key size, curve, digest for the key...).
    #[error("openssl: {0}")]
    Openssl(#[from] ErrorStack),
    /// The spec asks for something that cannot be expressed (e.g. a time out of range).
    #[error("invalid certificate spec: {0}")]
    InvalidSpec(String),
    /// Writing certificate files failed.
    #[error("cannot write certificate files: {0}")]
    Io(#[from] std::io::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, DevCertError>;

/// The key pair to generate for a certificate; sizes are chosen per test, so that weak keys
/// (e.g. `Rsa(1024)`) can be produced on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// RSA (rsaEncryption) with the given modulus size in bits; signs with PKCS#1 v1.5.
    Rsa(u32),
    /// RSA restricted to RSASSA-PSS (key type `RSA-PSS`); certificates it signs carry the
    /// `rsassaPss` algorithm with the chosen digest as PSS hash.
    RsaPss(u32),
    /// ECDSA on NIST P-224 (a deliberately too small curve for key-size tests).
    EcP224,
    /// ECDSA on NIST P-256.
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
    /// ECDSA on NIST P-521.
    EcP521,
    /// Ed25519; certificates it signs ignore [`DigestSpec`] (pure EdDSA).
    Ed25519,
}

impl KeySpec {
    /// Generates a fresh private key of this kind.
    pub fn generate(self) -> Result<PKey<Private>> {
        match self {
            KeySpec::Rsa(bits) => Ok(PKey::from_rsa(Rsa::generate(bits)?)?),
            KeySpec::RsaPss(bits) => {
                let mut ctx = PkeyCtx::new_id(Id::RSA_PSS)?;
                ctx.keygen_init()?;
                ctx.set_rsa_keygen_bits(bits)?;
                Ok(ctx.keygen()?)
            }
            KeySpec::EcP224 => ec_key(Nid::SECP224R1),
            KeySpec::EcP256 => ec_key(Nid::X9_62_PRIME256V1),
            KeySpec::EcP384 => ec_key(Nid::SECP384R1),
            KeySpec::EcP521 => ec_key(Nid::SECP521R1),
            KeySpec::Ed25519 => Ok(PKey::generate_ed25519()?),
        }
    }
}

fn ec_key(curve: Nid) -> Result<PKey<Private>> {
    let group = EcGroup::from_curve_name(curve)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

/// The digest the issuer signs with; weak ones exist so that rejection can be tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestSpec {
    /// MD5 (broken; for rejection tests only).
    Md5,
    /// SHA-1 (broken for signatures; for rejection tests only).
    Sha1,
    /// SHA-224 (not in the accepted set of the contract).
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl DigestSpec {
    /// The OpenSSL digest this spec stands for.
    pub fn message_digest(self) -> MessageDigest {
        match self {
            DigestSpec::Md5 => MessageDigest::md5(),
            DigestSpec::Sha1 => MessageDigest::sha1(),
            DigestSpec::Sha224 => MessageDigest::sha224(),
            DigestSpec::Sha256 => MessageDigest::sha256(),
            DigestSpec::Sha384 => MessageDigest::sha384(),
            DigestSpec::Sha512 => MessageDigest::sha512(),
        }
    }
}

/// X.509 certificate version; v1 certificates carry no extensions at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum X509Version {
    /// Version 1 (encoded value 0), no extensions.
    V1,
    /// Version 3 (encoded value 2), with the extensions of the [`CertKind`].
    V3,
}

/// What the certificate is for, which decides its basicConstraints and keyUsage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// A CA: basicConstraints `CA:TRUE` (critical, optional path length) and keyUsage
    /// `keyCertSign, cRLSign` (critical).
    Ca {
        /// `pathLenConstraint`, if any.
        path_len: Option<u32>,
    },
    /// An end entity: basicConstraints `CA:FALSE` (critical), keyUsage `digitalSignature`
    /// (critical).
    Leaf,
    /// A v3 certificate with neither basicConstraints nor keyUsage (only key identifiers),
    /// to test how CA-ness is judged when the extension is missing.
    NoConstraints,
}

/// A certificate together with its private key, as produced by [`CertificateSpec`]; it can
/// issue further certificates.
#[derive(Clone)]
pub struct Issued {
    /// The signed certificate.
    pub certificate: X509,
    /// Its private key (unencrypted; development use only).
    pub private_key: PKey<Private>,
}

impl fmt::Debug for Issued {
    // Never prints the key; the subject is what identifies a test certificate.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject: Vec<String> = self
            .certificate
            .subject_name()
            .entries()
            .map(|e| {
                let value = e.data().to_string().unwrap_or_default();
                format!("{}={}", e.object().nid().short_name().unwrap_or("?"), value)
            })
            .collect();
        f.debug_struct("Issued")
            .field("subject", &subject.join(","))
            .finish_non_exhaustive()
    }
}

impl Issued {
    /// The certificate as PEM (`-----BEGIN CERTIFICATE-----`), the upload format of the API.
    pub fn pem(&self) -> Result<String> {
        utf8(self.certificate.to_pem()?)
    }

    /// The private key as unencrypted PKCS#8 PEM, for `pmpctl dev certs` output files.
    pub fn key_pem(&self) -> Result<String> {
        utf8(self.private_key.private_key_to_pem_pkcs8()?)
    }

    /// The certificate as DER.
    pub fn der(&self) -> Result<Vec<u8>> {
        Ok(self.certificate.to_der()?)
    }
}

fn utf8(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| DevCertError::InvalidSpec(e.to_string()))
}

/// A declarative description of one certificate; start from [`CertificateSpec::ca`] or
/// [`CertificateSpec::leaf`], adjust with the builder methods, finish with
/// [`CertificateSpec::self_signed`] or [`CertificateSpec::issued_by`].
///
/// Defaults: RSA-2048, SHA-256, v3, valid from one hour ago for 365 days, no O/OU/L/ST/C.
#[derive(Debug, Clone)]
pub struct CertificateSpec {
    /// Subject CN (omitted when `None`).
    pub common_name: Option<String>,
    /// Subject O values, in order (several are allowed, to test ambiguity).
    pub organisations: Vec<String>,
    /// Subject OU.
    pub organisational_unit: Option<String>,
    /// Subject L.
    pub locality: Option<String>,
    /// Subject ST.
    pub state: Option<String>,
    /// Subject C (two letters).
    pub country: Option<String>,
    /// Key pair to generate.
    pub key: KeySpec,
    /// Digest the issuer signs with.
    pub digest: DigestSpec,
    /// notBefore as an offset in seconds from now (negative = in the past).
    pub not_before_offset_secs: i64,
    /// notAfter − notBefore in seconds (negative makes an inverted, never valid window).
    pub lifetime_secs: i64,
    /// X.509 version.
    pub version: X509Version,
    /// CA, leaf or neither.
    pub kind: CertKind,
    /// subjectAltName entries as `DNS:name`, `IP:address` or `URI:uri`.
    pub subject_alt_names: Vec<String>,
    /// Adds extendedKeyUsage serverAuth and clientAuth, for TLS endpoints.
    pub tls: bool,
}

impl CertificateSpec {
    fn new(common_name: &str, kind: CertKind) -> Self {
        CertificateSpec {
            common_name: Some(common_name.to_owned()),
            organisations: Vec::new(),
            organisational_unit: None,
            locality: None,
            state: None,
            country: None,
            key: KeySpec::Rsa(2048),
            digest: DigestSpec::Sha256,
            not_before_offset_secs: -3600,
            lifetime_secs: 365 * DAY,
            version: X509Version::V3,
            kind,
            subject_alt_names: Vec::new(),
            tls: false,
        }
    }

    /// A CA certificate (no path length limit) with the given CN.
    pub fn ca(common_name: &str) -> Self {
        Self::new(common_name, CertKind::Ca { path_len: None })
    }

    /// An end-entity certificate with the given CN.
    pub fn leaf(common_name: &str) -> Self {
        Self::new(common_name, CertKind::Leaf)
    }

    /// An FTM chip certificate of `organisation` as a provider issues it: O, OU=FTM, C=IN,
    /// EC P-256, valid from a day ago for two years (issue it from the provider's CA).
    pub fn ftm_chip(common_name: &str, organisation: &str) -> Self {
        Self::leaf(common_name)
            .organisation(organisation)
            .organisational_unit("FTM")
            .country("IN")
            .key(KeySpec::EcP256)
            .valid_from_days(-1)
            .valid_for_days(730)
    }

    /// Removes the CN, to test subjects without one.
    pub fn without_common_name(mut self) -> Self {
        self.common_name = None;
        self
    }

    /// Appends an O value (call twice for a subject with two O attributes).
    pub fn organisation(mut self, organisation: &str) -> Self {
        self.organisations.push(organisation.to_owned());
        self
    }

    /// Sets OU.
    pub fn organisational_unit(mut self, value: &str) -> Self {
        self.organisational_unit = Some(value.to_owned());
        self
    }

    /// Sets L.
    pub fn locality(mut self, value: &str) -> Self {
        self.locality = Some(value.to_owned());
        self
    }

    /// Sets ST.
    pub fn state(mut self, value: &str) -> Self {
        self.state = Some(value.to_owned());
        self
    }

    /// Sets C.
    pub fn country(mut self, value: &str) -> Self {
        self.country = Some(value.to_owned());
        self
    }

    /// Sets the key kind and size.
    pub fn key(mut self, key: KeySpec) -> Self {
        self.key = key;
        self
    }

    /// Sets the signing digest.
    pub fn digest(mut self, digest: DigestSpec) -> Self {
        self.digest = digest;
        self
    }

    /// notBefore = now + `days` (negative for the past).
    pub fn valid_from_days(mut self, days: i64) -> Self {
        self.not_before_offset_secs = days.saturating_mul(DAY);
        self
    }

    /// notAfter = notBefore + `days`.
    pub fn valid_for_days(mut self, days: i64) -> Self {
        self.lifetime_secs = days.saturating_mul(DAY);
        self
    }

    /// notBefore = now + `seconds`, for windows finer than a day.
    pub fn valid_from_seconds(mut self, seconds: i64) -> Self {
        self.not_before_offset_secs = seconds;
        self
    }

    /// notAfter = notBefore + `seconds`.
    pub fn valid_for_seconds(mut self, seconds: i64) -> Self {
        self.lifetime_secs = seconds;
        self
    }

    /// Sets the X.509 version.
    pub fn version(mut self, version: X509Version) -> Self {
        self.version = version;
        self
    }

    /// Sets what the certificate is (CA, leaf, or without constraints).
    pub fn kind(mut self, kind: CertKind) -> Self {
        self.kind = kind;
        self
    }

    /// Adds a subjectAltName entry: `DNS:name`, `IP:address` or `URI:uri`.
    pub fn subject_alt_name(mut self, entry: &str) -> Self {
        self.subject_alt_names.push(entry.to_owned());
        self
    }

    /// Makes this a TLS server and client certificate (extendedKeyUsage serverAuth and
    /// clientAuth).
    pub fn for_tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Makes this a CA with the given path length constraint.
    pub fn path_len(mut self, path_len: u32) -> Self {
        self.kind = CertKind::Ca {
            path_len: Some(path_len),
        };
        self
    }

    /// Generates a key and a certificate signed with that same key (a root, or a
    /// self-signed leaf for KER-PCM-015 tests).
    pub fn self_signed(&self) -> Result<Issued> {
        let key = self.key.generate()?;
        self.sign(key, None)
    }

    /// Generates a key and a certificate signed by `issuer` (issuer name = its subject).
    pub fn issued_by(&self, issuer: &Issued) -> Result<Issued> {
        let key = self.key.generate()?;
        self.sign(key, Some(issuer))
    }

    /// Signs a certificate for an existing key, e.g. to re-use a key across certificates.
    pub fn sign(&self, key: PKey<Private>, issuer: Option<&Issued>) -> Result<Issued> {
        let mut builder = X509Builder::new()?;
        builder.set_version(match self.version {
            X509Version::V1 => 0,
            X509Version::V3 => 2,
        })?;
        let serial = random_serial()?;
        builder.set_serial_number(&serial)?;

        let subject = self.subject()?;
        builder.set_subject_name(&subject)?;
        match issuer {
            Some(issuer) => builder.set_issuer_name(issuer.certificate.subject_name())?,
            None => builder.set_issuer_name(&subject)?,
        }
        builder.set_pubkey(&key)?;

        let now = unix_now()?;
        let not_before = now
            .checked_add(self.not_before_offset_secs)
            .ok_or_else(|| DevCertError::InvalidSpec("notBefore out of range".into()))?;
        let not_after = not_before
            .checked_add(self.lifetime_secs)
            .ok_or_else(|| DevCertError::InvalidSpec("notAfter out of range".into()))?;
        let not_before = Asn1Time::from_unix(not_before)?;
        let not_after = Asn1Time::from_unix(not_after)?;
        builder.set_not_before(&not_before)?;
        builder.set_not_after(&not_after)?;

        if self.version == X509Version::V3 {
            self.append_extensions(&mut builder, issuer)?;
        }

        let signing_key = issuer.map_or(&key, |i| &i.private_key);
        builder.sign(signing_key, digest_for(signing_key, self.digest))?;
        Ok(Issued {
            certificate: builder.build(),
            private_key: key,
        })
    }

    fn subject(&self) -> Result<openssl::x509::X509Name> {
        // Encoded most general first (C ... CN), as CAs conventionally do.
        let mut name = X509NameBuilder::new()?;
        if let Some(c) = &self.country {
            name.append_entry_by_nid(Nid::COUNTRYNAME, c)?;
        }
        if let Some(st) = &self.state {
            name.append_entry_by_nid(Nid::STATEORPROVINCENAME, st)?;
        }
        if let Some(l) = &self.locality {
            name.append_entry_by_nid(Nid::LOCALITYNAME, l)?;
        }
        for o in &self.organisations {
            name.append_entry_by_nid(Nid::ORGANIZATIONNAME, o)?;
        }
        if let Some(ou) = &self.organisational_unit {
            name.append_entry_by_nid(Nid::ORGANIZATIONALUNITNAME, ou)?;
        }
        if let Some(cn) = &self.common_name {
            name.append_entry_by_nid(Nid::COMMONNAME, cn)?;
        }
        Ok(name.build())
    }

    fn append_extensions(&self, builder: &mut X509Builder, issuer: Option<&Issued>) -> Result<()> {
        match self.kind {
            CertKind::Ca { path_len } => {
                let mut bc = BasicConstraints::new();
                bc.critical().ca();
                if let Some(len) = path_len {
                    bc.pathlen(len);
                }
                builder.append_extension(bc.build()?)?;
                builder.append_extension(
                    KeyUsage::new()
                        .critical()
                        .key_cert_sign()
                        .crl_sign()
                        .build()?,
                )?;
            }
            CertKind::Leaf => {
                builder.append_extension(BasicConstraints::new().critical().build()?)?;
                builder
                    .append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
            }
            CertKind::NoConstraints => {}
        }
        if self.tls {
            builder.append_extension(
                ExtendedKeyUsage::new()
                    .server_auth()
                    .client_auth()
                    .build()?,
            )?;
        }
        if !self.subject_alt_names.is_empty() {
            let mut names = SubjectAlternativeName::new();
            for entry in &self.subject_alt_names {
                match entry.split_once(':') {
                    Some(("DNS", name)) => names.dns(name),
                    Some(("IP", address)) => names.ip(address),
                    Some(("URI", uri)) => names.uri(uri),
                    _ => return Err(DevCertError::InvalidSpec(format!("bad SAN {entry}"))),
                };
            }
            let context = builder.x509v3_context(issuer.map(|i| &*i.certificate), None);
            let extension = names.build(&context)?;
            builder.append_extension(extension)?;
        }
        let skid = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None))?;
        builder.append_extension(skid)?;
        if let Some(issuer) = issuer {
            // Needed by strict (RFC 5280) path validation for every non-self-signed cert.
            let akid = AuthorityKeyIdentifier::new()
                .keyid(false)
                .build(&builder.x509v3_context(Some(&issuer.certificate), None))?;
            builder.append_extension(akid)?;
        }
        Ok(())
    }
}

/// EdDSA keys sign without a separate digest; every other key uses the requested one.
fn digest_for(key: &PKey<Private>, digest: DigestSpec) -> MessageDigest {
    match key.id() {
        Id::ED25519 | Id::ED448 => MessageDigest::null(),
        _ => digest.message_digest(),
    }
}

/// A random positive 159-bit serial (top bit of 20 octets clear, never zero).
pub fn random_serial() -> Result<Asn1Integer> {
    let mut bn = BigNum::new()?;
    bn.rand(159, MsbOption::ONE, false)?;
    Ok(bn.to_asn1_integer()?)
}

fn unix_now() -> Result<i64> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| DevCertError::InvalidSpec(format!("clock before 1970: {e}")))?
        .as_secs();
    i64::try_from(secs).map_err(|e| DevCertError::InvalidSpec(e.to_string()))
}

/// A complete development PKI for one organisation: what an admin uploads as the FTM
/// domain's CAs (root, intermediate) and what the FTM provider uploads (partner and chip
/// certificates, both with O = the organisation and issued by the intermediate).
#[derive(Debug, Clone)]
pub struct DevPki {
    /// Self-signed root CA (RSA-3072, 10 years).
    pub root: Issued,
    /// Intermediate CA issued by the root (RSA-2048, 5 years, path length 0).
    pub intermediate: Issued,
    /// Partner certificate (RSA-2048, 2 years).
    pub partner: Issued,
    /// FTM chip certificate (EC P-256, 2 years).
    pub ftm_chip: Issued,
}

impl DevPki {
    /// Generates a fresh PKI for `org`; every certificate starts one day in the past so that
    /// small clock differences between machines do not make it "future dated".
    pub fn generate(org: &str) -> Result<Self> {
        let root = CertificateSpec::ca(&format!("{org} Dev Root CA"))
            .organisation(org)
            .country("IN")
            .key(KeySpec::Rsa(3072))
            .valid_from_days(-1)
            .valid_for_days(3650)
            .self_signed()?;
        let intermediate = CertificateSpec::ca(&format!("{org} Dev Intermediate CA"))
            .organisation(org)
            .country("IN")
            .path_len(0)
            .valid_from_days(-1)
            .valid_for_days(1825)
            .issued_by(&root)?;
        let partner = CertificateSpec::leaf(&format!("{org} Partner"))
            .organisation(org)
            .organisational_unit("Partner")
            .country("IN")
            .valid_from_days(-1)
            .valid_for_days(730)
            .issued_by(&intermediate)?;
        let ftm_chip =
            CertificateSpec::ftm_chip(&format!("{org} FTM Chip"), org).issued_by(&intermediate)?;
        Ok(DevPki {
            root,
            intermediate,
            partner,
            ftm_chip,
        })
    }

    /// Root then intermediate as concatenated PEM, the CA upload of the FTM domain.
    pub fn ca_bundle_pem(&self) -> Result<String> {
        Ok(format!("{}{}", self.root.pem()?, self.intermediate.pem()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::stack::Stack;
    use openssl::x509::X509StoreContext;
    use openssl::x509::store::X509StoreBuilder;

    fn seconds_between(a: &openssl::asn1::Asn1TimeRef, b: &openssl::asn1::Asn1TimeRef) -> i64 {
        let d = a.diff(b).expect("diff");
        i64::from(d.days) * DAY + i64::from(d.secs)
    }

    fn now_asn1() -> Asn1Time {
        Asn1Time::from_unix(unix_now().expect("now")).expect("time")
    }

    fn text(cert: &X509) -> String {
        String::from_utf8(cert.to_text().expect("text")).expect("utf8")
    }

    #[test]
    fn ca_spec_produces_v3_ca_with_key_usage() {
        let root = CertificateSpec::ca("root")
            .organisation("Org")
            .key(KeySpec::Rsa(2048))
            .self_signed()
            .expect("root");
        let cert = &root.certificate;
        assert_eq!(cert.version(), 2);
        assert_eq!(cert.public_key().expect("key").bits(), 2048);
        assert_eq!(
            cert.signature_algorithm().object().nid(),
            Nid::SHA256WITHRSAENCRYPTION
        );
        let t = text(cert);
        assert!(t.contains("CA:TRUE"), "{t}");
        assert!(t.contains("Certificate Sign, CRL Sign"), "{t}");
        assert!(cert.verify(&root.private_key).expect("verify"));
        assert_eq!(cert.pathlen(), None);
        let serial = cert.serial_number().to_bn().expect("bn");
        assert!(!serial.is_negative());
        assert_eq!(serial.num_bits(), 159);
    }

    #[test]
    fn path_len_is_encoded() {
        let root = CertificateSpec::ca("root")
            .path_len(1)
            .key(KeySpec::EcP256)
            .self_signed()
            .expect("root");
        assert_eq!(root.certificate.pathlen(), Some(1));
    }

    #[test]
    fn leaf_spec_is_ca_false_and_verifies_with_issuer() {
        let root = CertificateSpec::ca("root")
            .key(KeySpec::EcP256)
            .self_signed()
            .expect("root");
        let leaf = CertificateSpec::leaf("leaf")
            .organisation("Org")
            .organisational_unit("Unit")
            .locality("City")
            .state("State")
            .country("IN")
            .digest(DigestSpec::Sha384)
            .issued_by(&root)
            .expect("leaf");
        let cert = &leaf.certificate;
        assert!(cert.verify(&root.private_key).expect("verify"));
        // Verification with an unrelated key (here of another type) must not succeed.
        assert!(!matches!(cert.verify(&leaf.private_key), Ok(true)));
        assert_eq!(
            cert.signature_algorithm().object().nid(),
            Nid::ECDSA_WITH_SHA384
        );
        let t = text(cert);
        assert!(t.contains("CA:FALSE"), "{t}");
        assert!(t.contains("Digital Signature"), "{t}");
        assert!(t.contains("Authority Key Identifier"), "{t}");
        let issuer = cert
            .issuer_name()
            .try_cmp(root.certificate.subject_name())
            .expect("cmp");
        assert_eq!(issuer, std::cmp::Ordering::Equal);
        let o: Vec<_> = cert
            .subject_name()
            .entries_by_nid(Nid::ORGANIZATIONNAME)
            .map(|e| e.data().to_string().expect("utf8"))
            .collect();
        assert_eq!(o, vec!["Org".to_string()]);
    }

    #[test]
    fn key_specs_have_requested_sizes() {
        for (spec, id, bits) in [
            (KeySpec::Rsa(1024), Id::RSA, 1024),
            (KeySpec::EcP224, Id::EC, 224),
            (KeySpec::EcP256, Id::EC, 256),
            (KeySpec::EcP384, Id::EC, 384),
            (KeySpec::EcP521, Id::EC, 521),
            (KeySpec::RsaPss(2048), Id::RSA_PSS, 2048),
        ] {
            let key = spec.generate().expect("key");
            assert_eq!(key.id(), id, "{spec:?}");
            assert_eq!(key.bits(), bits, "{spec:?}");
        }
        assert_eq!(KeySpec::Ed25519.generate().expect("key").id(), Id::ED25519);
    }

    #[test]
    fn digests_map_to_signature_nids() {
        for (digest, nid) in [
            (DigestSpec::Md5, Nid::MD5WITHRSAENCRYPTION),
            (DigestSpec::Sha1, Nid::SHA1WITHRSAENCRYPTION),
            (DigestSpec::Sha224, Nid::SHA224WITHRSAENCRYPTION),
            (DigestSpec::Sha256, Nid::SHA256WITHRSAENCRYPTION),
            (DigestSpec::Sha384, Nid::SHA384WITHRSAENCRYPTION),
            (DigestSpec::Sha512, Nid::SHA512WITHRSAENCRYPTION),
        ] {
            let cert = CertificateSpec::ca("r")
                .digest(digest)
                .self_signed()
                .expect("cert");
            assert_eq!(
                cert.certificate.signature_algorithm().object().nid(),
                nid,
                "{digest:?}"
            );
        }
    }

    #[test]
    fn rsa_pss_and_ed25519_issuers() {
        let pss = CertificateSpec::ca("pss")
            .key(KeySpec::RsaPss(2048))
            .self_signed()
            .expect("pss");
        assert_eq!(
            pss.certificate.signature_algorithm().object().nid(),
            Nid::RSASSAPSS
        );
        assert!(pss.certificate.verify(&pss.private_key).expect("verify"));
        let ed = CertificateSpec::ca("ed")
            .key(KeySpec::Ed25519)
            .self_signed()
            .expect("ed");
        assert_eq!(
            ed.certificate
                .signature_algorithm()
                .object()
                .nid()
                .short_name()
                .expect("name"),
            "ED25519"
        );
    }

    #[test]
    fn v1_has_no_extensions() {
        let v1 = CertificateSpec::ca("v1")
            .version(X509Version::V1)
            .self_signed()
            .expect("v1");
        assert_eq!(v1.certificate.version(), 0);
        assert!(!text(&v1.certificate).contains("X509v3"));
    }

    #[test]
    fn no_constraints_has_neither_bc_nor_ku() {
        let c = CertificateSpec::ca("plain")
            .kind(CertKind::NoConstraints)
            .self_signed()
            .expect("plain");
        let t = text(&c.certificate);
        assert!(!t.contains("Basic Constraints"), "{t}");
        assert!(!t.contains("Key Usage"), "{t}");
        assert!(t.contains("Subject Key Identifier"), "{t}");
    }

    #[test]
    fn validity_offsets_are_applied() {
        let now = now_asn1();
        let c = CertificateSpec::leaf("old")
            .valid_from_days(-400)
            .valid_for_days(100)
            .self_signed()
            .expect("cert");
        let nb = seconds_between(&now, c.certificate.not_before());
        let na = seconds_between(&now, c.certificate.not_after());
        assert!((nb + 400 * DAY).abs() < 60, "{nb}");
        assert!((na + 300 * DAY).abs() < 60, "{na}");

        let f = CertificateSpec::leaf("future")
            .valid_from_seconds(7200)
            .valid_for_seconds(60)
            .self_signed()
            .expect("cert");
        let nb = seconds_between(&now, f.certificate.not_before());
        assert!((nb - 7200).abs() < 60, "{nb}");
        assert_eq!(
            seconds_between(f.certificate.not_before(), f.certificate.not_after()),
            60
        );
    }

    #[test]
    fn subject_without_cn() {
        let c = CertificateSpec::leaf("x")
            .without_common_name()
            .organisation("A")
            .organisation("B")
            .self_signed()
            .expect("cert");
        assert_eq!(
            c.certificate
                .subject_name()
                .entries_by_nid(Nid::COMMONNAME)
                .count(),
            0
        );
        assert_eq!(
            c.certificate
                .subject_name()
                .entries_by_nid(Nid::ORGANIZATIONNAME)
                .count(),
            2
        );
    }

    #[test]
    fn dev_pki_chains_and_pems() {
        let pki = DevPki::generate("Acme Chips").expect("pki");
        let now = now_asn1();
        assert!(seconds_between(&now, pki.root.certificate.not_after()) > 9 * 365 * DAY);
        assert!(seconds_between(&now, pki.partner.certificate.not_after()) > 700 * DAY);

        let mut store = X509StoreBuilder::new().expect("store");
        store.add_cert(pki.root.certificate.clone()).expect("add");
        let store = store.build();
        let mut untrusted = Stack::new().expect("stack");
        untrusted
            .push(pki.intermediate.certificate.clone())
            .expect("push");
        for leaf in [&pki.partner, &pki.ftm_chip] {
            let mut ctx = X509StoreContext::new().expect("ctx");
            let ok = ctx
                .init(&store, &leaf.certificate, &untrusted, |c| c.verify_cert())
                .expect("verify");
            assert!(ok, "{leaf:?}");
            let o = leaf
                .certificate
                .subject_name()
                .entries_by_nid(Nid::ORGANIZATIONNAME)
                .next()
                .expect("O");
            assert_eq!(o.data().to_string().expect("utf8"), "Acme Chips");
        }
        assert_eq!(
            pki.ftm_chip.certificate.public_key().expect("k").id(),
            Id::EC
        );

        let bundle = pki.ca_bundle_pem().expect("pem");
        assert_eq!(bundle.matches("-----BEGIN CERTIFICATE-----").count(), 2);
        assert!(pki.partner.key_pem().expect("key").contains("PRIVATE KEY"));
        assert!(!format!("{:?}", pki.partner).contains("PRIVATE"));
    }
}
