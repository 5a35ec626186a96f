//! Certificates with faults that [`CertificateSpec`](crate::CertificateSpec) cannot express:
//! every extension that path validation reads (basicConstraints, keyUsage, subject and
//! authority key identifiers, unknown critical extensions) is written from its DER here, so
//! that each can be left out, made (non-)critical or given values that do not match the
//! issuer; a certificate can carry another issuer name than its signer's subject, be signed
//! by a key other than its issuer's, use keys that are too weak or EC keys with explicit
//! curve parameters, or have its signature corrupted.
//!
//! ```
//! use pmp_dev_certs::variants::{KeyIdentifier, Usage, VariantSpec};
//!
//! let root = VariantSpec::ca("root").self_signed().expect("root");
//! // A CA that may not sign certificates (no keyCertSign) ...
//! let ca = VariantSpec::ca("no keyCertSign")
//!     .key_usage(Some(&[Usage::DigitalSignature, Usage::CrlSign]))
//!     .issued_by(&root)
//!     .expect("ca");
//! // ... and a leaf whose authority key identifier names no existing key.
//! let leaf = VariantSpec::leaf("leaf")
//!     .authority_key_id(KeyIdentifier::Bytes(vec![0x42; 20]))
//!     .issued_by(&ca)
//!     .expect("leaf");
//! assert_eq!(leaf.certificate.authority_key_id().expect("aki").as_slice(), &[0x42; 20]);
//! ```
//!
//! Defaults differ from [`CertificateSpec`](crate::CertificateSpec) where speed matters: EC
//! P-256 keys (RSA key generation is slow), SHA-256, valid from one hour ago for 365 days.

use openssl::asn1::{Asn1Object, Asn1OctetString, Asn1Time};
use openssl::ec::{Asn1Flag, EcGroup, EcKey};
use openssl::hash::{MessageDigest, hash};
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Private};
use openssl::x509::{X509, X509Builder, X509Extension, X509Name, X509NameBuilder, X509NameRef};

use crate::{DevCertError, DigestSpec, Issued, KeySpec, Result, X509Version, random_serial};

/// Seconds in a day.
const DAY: i64 = 86_400;

/// OIDs of the extensions written here.
const OID_BASIC_CONSTRAINTS: &str = "2.5.29.19";
const OID_KEY_USAGE: &str = "2.5.29.15";
const OID_SUBJECT_KEY_ID: &str = "2.5.29.14";
const OID_AUTHORITY_KEY_ID: &str = "2.5.29.35";
/// An OID under the `example` arc no implementation knows, for unknown critical extensions.
pub const OID_UNKNOWN_EXTENSION: &str = "1.3.6.1.4.1.32473.1.1";

/// The keys a variant can have, beyond [`KeySpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariantKey {
    /// Any key [`KeySpec`] generates.
    Spec(KeySpec),
    /// ECDSA on NIST P-192 (96-bit security: too weak for every security level above 1).
    EcP192,
    /// ECDSA on P-256 with the curve's parameters spelled out (explicit parameters) in the
    /// SubjectPublicKeyInfo instead of its name, which RFC 5480 forbids.
    EcP256ExplicitParameters,
}

impl VariantKey {
    /// Generates a fresh private key of this kind.
    pub fn generate(self) -> Result<PKey<Private>> {
        match self {
            VariantKey::Spec(spec) => spec.generate(),
            VariantKey::EcP192 => {
                let group = EcGroup::from_curve_name(Nid::X9_62_PRIME192V1)?;
                Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
            }
            VariantKey::EcP256ExplicitParameters => {
                let mut group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
                group.set_asn1_flag(Asn1Flag::EXPLICIT_CURVE);
                Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
            }
        }
    }
}

/// Bits of the keyUsage extension (RFC 5280 §4.2.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// `digitalSignature`: the bit an end entity (partner, FTM chip) signs with.
    DigitalSignature,
    /// `nonRepudiation` (now `contentCommitment`): signatures that commit their signer.
    NonRepudiation,
    /// `keyEncipherment`: RSA key transport.
    KeyEncipherment,
    /// `dataEncipherment`: enciphering data directly with the public key.
    DataEncipherment,
    /// `keyAgreement`: ECDH.
    KeyAgreement,
    /// `keyCertSign`: the bit a CA needs to issue certificates; leaving it out tests that fault.
    KeyCertSign,
    /// `cRLSign`: the bit a CA needs to sign revocation lists.
    CrlSign,
}

impl Usage {
    fn bit(self) -> usize {
        match self {
            Usage::DigitalSignature => 0,
            Usage::NonRepudiation => 1,
            Usage::KeyEncipherment => 2,
            Usage::DataEncipherment => 3,
            Usage::KeyAgreement => 4,
            Usage::KeyCertSign => 5,
            Usage::CrlSign => 6,
        }
    }
}

/// The basicConstraints extension as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasicConstraintsSpec {
    /// Marks the extension critical, as RFC 5280 requires of a CA.
    pub critical: bool,
    /// `cA`: whether the subject may act as a CA.
    pub ca: bool,
    /// `pathLenConstraint`; may be set even when `ca` is false, to test that fault.
    pub path_len: Option<u32>,
}

/// The keyUsage extension as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUsageSpec {
    /// Marks the extension critical, as RFC 5280 recommends.
    pub critical: bool,
    /// The bits set, in any order; empty writes an extension with no bit set.
    pub usages: Vec<Usage>,
}

/// What a subject or authority key identifier holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyIdentifier {
    /// The extension is left out.
    Absent,
    /// The expected value: for the subject key identifier the SHA-1 of the certificate's
    /// public key (RFC 5280 method 1); for the authority key identifier the issuer's subject
    /// key identifier, or the SHA-1 of the issuer's public key if it has none.
    Derived,
    /// These bytes, whatever the keys are.
    Bytes(Vec<u8>),
}

/// An extension written from its DER value as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawExtension {
    /// Dotted OID.
    pub oid: String,
    /// Marks the extension critical: set it on an unknown extension to test its rejection.
    pub critical: bool,
    /// DER of the extension value (the content of `extnValue`).
    pub value: Vec<u8>,
}

/// A declarative description of one certificate whose every path-validation-relevant detail
/// can be chosen; start from [`VariantSpec::ca`] or [`VariantSpec::leaf`], finish with
/// [`VariantSpec::self_signed`], [`VariantSpec::issued_by`] or [`VariantSpec::sign`].
#[derive(Debug, Clone)]
pub struct VariantSpec {
    /// Subject CN (the subject is empty when `None`).
    pub common_name: Option<String>,
    /// Subject O.
    pub organisation: Option<String>,
    /// Subject key; unusual kinds test key-strength and encoding checks.
    pub key: VariantKey,
    /// Signature hash; weak ones test the digest policy.
    pub digest: DigestSpec,
    /// notBefore as an offset in seconds from now (negative = in the past).
    pub not_before_offset_secs: i64,
    /// notAfter − notBefore in seconds.
    pub lifetime_secs: i64,
    /// v1 certificates get no extensions at all, whatever is asked below.
    pub version: X509Version,
    /// `None` leaves the extension out (a CA without it must not validate).
    pub basic_constraints: Option<BasicConstraintsSpec>,
    /// `None` leaves the extension out, which leaves the key's use unrestricted.
    pub key_usage: Option<KeyUsageSpec>,
    /// What the subject key identifier holds.
    pub subject_key_id: KeyIdentifier,
    /// Marks the subject key identifier critical, which RFC 5280 forbids.
    pub subject_key_id_critical: bool,
    /// Ignored for self-signed certificates unless [`KeyIdentifier::Bytes`].
    pub authority_key_id: KeyIdentifier,
    /// Marks the authority key identifier critical, which RFC 5280 forbids.
    pub authority_key_id_critical: bool,
    /// Appended after the standard extensions.
    pub extra_extensions: Vec<RawExtension>,
    /// DER of the issuer name to write instead of the issuer's subject (or, when
    /// self-signed, of the certificate's own subject).
    pub issuer_name_override: Option<Vec<u8>>,
}

impl VariantSpec {
    fn new(common_name: &str) -> Self {
        VariantSpec {
            common_name: Some(common_name.to_owned()),
            organisation: None,
            key: VariantKey::Spec(KeySpec::EcP256),
            digest: DigestSpec::Sha256,
            not_before_offset_secs: -3600,
            lifetime_secs: 365 * DAY,
            version: X509Version::V3,
            basic_constraints: None,
            key_usage: None,
            subject_key_id: KeyIdentifier::Derived,
            subject_key_id_critical: false,
            authority_key_id: KeyIdentifier::Derived,
            authority_key_id_critical: false,
            extra_extensions: Vec::new(),
            issuer_name_override: None,
        }
    }

    /// A well-formed CA: critical `CA:TRUE` without path length, critical keyUsage
    /// `keyCertSign, cRLSign`, both key identifiers.
    pub fn ca(common_name: &str) -> Self {
        let mut spec = Self::new(common_name);
        spec.basic_constraints = Some(BasicConstraintsSpec {
            critical: true,
            ca: true,
            path_len: None,
        });
        spec.key_usage = Some(KeyUsageSpec {
            critical: true,
            usages: vec![Usage::KeyCertSign, Usage::CrlSign],
        });
        spec
    }

    /// A well-formed end entity: critical `CA:FALSE`, critical keyUsage `digitalSignature`,
    /// both key identifiers.
    pub fn leaf(common_name: &str) -> Self {
        let mut spec = Self::new(common_name);
        spec.basic_constraints = Some(BasicConstraintsSpec {
            critical: true,
            ca: false,
            path_len: None,
        });
        spec.key_usage = Some(KeyUsageSpec {
            critical: true,
            usages: vec![Usage::DigitalSignature],
        });
        spec
    }

    /// Sets the subject O.
    pub fn organisation(mut self, organisation: &str) -> Self {
        self.organisation = Some(organisation.to_owned());
        self
    }

    /// Leaves the subject empty (no CN, no O).
    pub fn empty_subject(mut self) -> Self {
        self.common_name = None;
        self.organisation = None;
        self
    }

    /// Sets the key kind.
    pub fn key(mut self, key: VariantKey) -> Self {
        self.key = key;
        self
    }

    /// Sets the key kind to one of [`KeySpec`].
    pub fn key_spec(mut self, key: KeySpec) -> Self {
        self.key = VariantKey::Spec(key);
        self
    }

    /// Sets the signing digest.
    pub fn digest(mut self, digest: DigestSpec) -> Self {
        self.digest = digest;
        self
    }

    /// notBefore = now + `days`.
    pub fn valid_from_days(mut self, days: i64) -> Self {
        self.not_before_offset_secs = days.saturating_mul(DAY);
        self
    }

    /// notAfter = notBefore + `days`.
    pub fn valid_for_days(mut self, days: i64) -> Self {
        self.lifetime_secs = days.saturating_mul(DAY);
        self
    }

    /// Sets the X.509 version (v1: no extensions).
    pub fn version(mut self, version: X509Version) -> Self {
        self.version = version;
        self
    }

    /// Replaces (or with `None` removes) basicConstraints.
    pub fn basic_constraints(mut self, bc: Option<BasicConstraintsSpec>) -> Self {
        self.basic_constraints = bc;
        self
    }

    /// Sets the path length of the basicConstraints (added as critical `CA:TRUE` if absent).
    pub fn path_len(mut self, path_len: u32) -> Self {
        let mut bc = self.basic_constraints.unwrap_or(BasicConstraintsSpec {
            critical: true,
            ca: true,
            path_len: None,
        });
        bc.path_len = Some(path_len);
        self.basic_constraints = Some(bc);
        self
    }

    /// Replaces (or with `None` removes) keyUsage, keeping it critical.
    pub fn key_usage(mut self, usages: Option<&[Usage]>) -> Self {
        self.key_usage = usages.map(|usages| KeyUsageSpec {
            critical: true,
            usages: usages.to_vec(),
        });
        self
    }

    /// Sets the subject key identifier.
    pub fn subject_key_id(mut self, id: KeyIdentifier) -> Self {
        self.subject_key_id = id;
        self
    }

    /// Marks the subject key identifier critical (RFC 5280 forbids it).
    pub fn subject_key_id_critical(mut self) -> Self {
        self.subject_key_id_critical = true;
        self
    }

    /// Sets the authority key identifier.
    pub fn authority_key_id(mut self, id: KeyIdentifier) -> Self {
        self.authority_key_id = id;
        self
    }

    /// Marks the authority key identifier critical (RFC 5280 forbids it).
    pub fn authority_key_id_critical(mut self) -> Self {
        self.authority_key_id_critical = true;
        self
    }

    /// Appends an extension of an OID nobody knows, with a NULL value.
    pub fn unknown_extension(mut self, critical: bool) -> Self {
        self.extra_extensions.push(RawExtension {
            oid: OID_UNKNOWN_EXTENSION.to_owned(),
            critical,
            value: vec![0x05, 0x00],
        });
        self
    }

    /// Writes this issuer name instead of the signer's subject.
    pub fn issuer_name(mut self, name: &X509NameRef) -> Result<Self> {
        self.issuer_name_override = Some(name.to_der()?);
        Ok(self)
    }

    /// Generates a key and a certificate signed with it.
    pub fn self_signed(&self) -> Result<Issued> {
        let key = self.key.generate()?;
        self.sign(key, None, None)
    }

    /// Generates a key and a certificate signed by `issuer`.
    pub fn issued_by(&self, issuer: &Issued) -> Result<Issued> {
        let key = self.key.generate()?;
        self.sign(key, Some(issuer), None)
    }

    /// Generates a key and a certificate that names `issuer` (issuer name, authority key
    /// identifier) but is signed with `signer`, i.e. a forged signature.
    pub fn issued_by_forged(&self, issuer: &Issued, signer: &PKeyRef<Private>) -> Result<Issued> {
        let key = self.key.generate()?;
        self.sign(key, Some(issuer), Some(signer))
    }

    /// Signs a certificate for `key`: issued by `issuer` (self-signed when `None`), with the
    /// signature made by `signer` when given (else the issuer's, or the own key).
    pub fn sign(
        &self,
        key: PKey<Private>,
        issuer: Option<&Issued>,
        signer: Option<&PKeyRef<Private>>,
    ) -> Result<Issued> {
        let mut builder = X509Builder::new()?;
        builder.set_version(match self.version {
            X509Version::V1 => 0,
            X509Version::V3 => 2,
        })?;
        let serial = random_serial()?;
        builder.set_serial_number(&serial)?;
        let subject = self.subject()?;
        builder.set_subject_name(&subject)?;
        let override_name = match &self.issuer_name_override {
            Some(der) => Some(X509Name::from_der(der)?),
            None => None,
        };
        match (&override_name, issuer) {
            (Some(name), _) => builder.set_issuer_name(name)?,
            (None, Some(issuer)) => builder.set_issuer_name(issuer.certificate.subject_name())?,
            (None, None) => builder.set_issuer_name(&subject)?,
        }
        builder.set_pubkey(&key)?;
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|e| DevCertError::InvalidSpec(e.to_string()))?
                .as_secs(),
        )
        .map_err(|e| DevCertError::InvalidSpec(e.to_string()))?;
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
            for extension in self.extensions(&key, issuer)? {
                builder.append_extension(extension)?;
            }
        }

        let signing_key: &PKeyRef<Private> = match (signer, issuer) {
            (Some(signer), _) => signer,
            (None, Some(issuer)) => &issuer.private_key,
            (None, None) => &key,
        };
        let digest = match signing_key.id() {
            Id::ED25519 | Id::ED448 => MessageDigest::null(),
            _ => self.digest.message_digest(),
        };
        builder.sign(signing_key, digest)?;
        Ok(Issued {
            certificate: builder.build(),
            private_key: key,
        })
    }

    fn subject(&self) -> Result<X509Name> {
        let mut name = X509NameBuilder::new()?;
        if let Some(o) = &self.organisation {
            name.append_entry_by_nid(Nid::ORGANIZATIONNAME, o)?;
        }
        if let Some(cn) = &self.common_name {
            name.append_entry_by_nid(Nid::COMMONNAME, cn)?;
        }
        Ok(name.build())
    }

    fn extensions(
        &self,
        key: &PKeyRef<Private>,
        issuer: Option<&Issued>,
    ) -> Result<Vec<X509Extension>> {
        let mut out = Vec::new();
        if let Some(bc) = &self.basic_constraints {
            out.push(raw_extension(
                OID_BASIC_CONSTRAINTS,
                bc.critical,
                &basic_constraints_der(bc),
            )?);
        }
        if let Some(ku) = &self.key_usage {
            out.push(raw_extension(
                OID_KEY_USAGE,
                ku.critical,
                &key_usage_der(&ku.usages),
            )?);
        }
        let ski = match &self.subject_key_id {
            KeyIdentifier::Absent => None,
            KeyIdentifier::Derived => Some(key_hash(key)?),
            KeyIdentifier::Bytes(bytes) => Some(bytes.clone()),
        };
        if let Some(ski) = ski {
            out.push(raw_extension(
                OID_SUBJECT_KEY_ID,
                self.subject_key_id_critical,
                &tlv(0x04, &ski),
            )?);
        }
        let aki = match (&self.authority_key_id, issuer) {
            (KeyIdentifier::Absent, _) | (KeyIdentifier::Derived, None) => None,
            (KeyIdentifier::Derived, Some(issuer)) => {
                Some(match issuer.certificate.subject_key_id() {
                    Some(ski) => ski.as_slice().to_vec(),
                    None => {
                        let public = issuer.certificate.public_key()?;
                        key_hash(&public)?
                    }
                })
            }
            (KeyIdentifier::Bytes(bytes), _) => Some(bytes.clone()),
        };
        if let Some(aki) = aki {
            // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }
            out.push(raw_extension(
                OID_AUTHORITY_KEY_ID,
                self.authority_key_id_critical,
                &tlv(0x30, &tlv(0x80, &aki)),
            )?);
        }
        for extra in &self.extra_extensions {
            out.push(raw_extension(&extra.oid, extra.critical, &extra.value)?);
        }
        Ok(out)
    }
}

/// A copy of `issued` whose signature has one bit flipped: well-formed, but it verifies
/// with no key.
pub fn tampered_signature(issued: &Issued) -> Result<Issued> {
    let mut der = issued.certificate.to_der()?;
    // The signature BIT STRING closes the certificate; its last octet is signature data for
    // every algorithm (for ECDSA the low octet of `s`).
    let last = der
        .last_mut()
        .ok_or_else(|| DevCertError::InvalidSpec("empty certificate".into()))?;
    *last ^= 0x01;
    Ok(Issued {
        certificate: X509::from_der(&der)?,
        private_key: issued.private_key.clone(),
    })
}

/// An X.509 name with a single CN, e.g. to impersonate another certificate's subject.
pub fn name_with_cn(common_name: &str) -> Result<X509Name> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    Ok(name.build())
}

fn raw_extension(oid: &str, critical: bool, value: &[u8]) -> Result<X509Extension> {
    let oid = Asn1Object::from_str(oid)?;
    let value = Asn1OctetString::new_from_bytes(value)?;
    Ok(X509Extension::new_from_der(&oid, critical, &value)?)
}

/// RFC 5280 key identifier method 1: SHA-1 of the subjectPublicKey BIT STRING's bits.
fn key_hash<T: HasPublic>(key: &PKeyRef<T>) -> Result<Vec<u8>> {
    let spki = key.public_key_to_der()?;
    let malformed = || DevCertError::InvalidSpec("malformed SubjectPublicKeyInfo".into());
    let (tag, content, _) = read_tlv(&spki).ok_or_else(malformed)?;
    if tag != 0x30 {
        return Err(malformed());
    }
    let (_, _, rest) = read_tlv(content).ok_or_else(malformed)?; // algorithm
    let (tag, bits, _) = read_tlv(rest).ok_or_else(malformed)?;
    if tag != 0x03 || bits.is_empty() {
        return Err(malformed());
    }
    Ok(hash(MessageDigest::sha1(), &bits[1..])?.to_vec())
}

/// (tag, content, rest) of the first DER element of `data`.
fn read_tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[count..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// One DER element.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// DER INTEGER of a non-negative value.
fn integer_der(value: u32) -> Vec<u8> {
    let mut bytes: Vec<u8> = value
        .to_be_bytes()
        .into_iter()
        .skip_while(|&b| b == 0)
        .collect();
    if bytes.first().is_none_or(|&b| b & 0x80 != 0) {
        bytes.insert(0, 0);
    }
    tlv(0x02, &bytes)
}

/// BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }
fn basic_constraints_der(bc: &BasicConstraintsSpec) -> Vec<u8> {
    let mut content = Vec::new();
    if bc.ca {
        content.extend(tlv(0x01, &[0xff]));
    }
    if let Some(len) = bc.path_len {
        content.extend(integer_der(len));
    }
    tlv(0x30, &content)
}

/// KeyUsage ::= BIT STRING (named bits: trailing zero bits removed).
fn key_usage_der(usages: &[Usage]) -> Vec<u8> {
    let mut bits = [0u8; 2];
    for usage in usages {
        let bit = usage.bit();
        bits[bit / 8] |= 0x80 >> (bit % 8);
    }
    let used = bits.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let bytes = &bits[..used];
    let unused = bytes.last().map_or(0, |b| b.trailing_zeros() as u8);
    let mut content = vec![unused];
    content.extend_from_slice(bytes);
    tlv(0x03, &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(cert: &X509) -> String {
        String::from_utf8(cert.to_text().expect("text")).expect("utf8")
    }

    #[test]
    fn well_formed_ca_and_leaf_match_the_issuer() {
        let root = VariantSpec::ca("root")
            .path_len(1)
            .self_signed()
            .expect("root");
        let t = text(&root.certificate);
        assert!(t.contains("CA:TRUE, pathlen:1"), "{t}");
        assert!(t.contains("Certificate Sign, CRL Sign"), "{t}");
        assert_eq!(root.certificate.pathlen(), Some(1));
        assert!(root.certificate.authority_key_id().is_none());
        let leaf = VariantSpec::leaf("leaf").issued_by(&root).expect("leaf");
        let t = text(&leaf.certificate);
        assert!(t.contains("CA:FALSE"), "{t}");
        assert!(t.contains("Digital Signature"), "{t}");
        assert_eq!(
            leaf.certificate.authority_key_id().expect("aki").as_slice(),
            root.certificate.subject_key_id().expect("ski").as_slice()
        );
        assert!(leaf.certificate.verify(&root.private_key).expect("verify"));
    }

    #[test]
    fn key_hash_matches_openssl() {
        use openssl::x509::extension::SubjectKeyIdentifier;
        let key = KeySpec::EcP256.generate().expect("key");
        let mut builder = X509Builder::new().expect("builder");
        builder.set_pubkey(&key).expect("pubkey");
        let ext = SubjectKeyIdentifier::new()
            .build(&builder.x509v3_context(None, None))
            .expect("ski");
        builder.append_extension(ext).expect("append");
        builder.sign(&key, MessageDigest::sha256()).expect("sign");
        let cert = builder.build();
        assert_eq!(
            cert.subject_key_id().expect("ski").as_slice(),
            key_hash(&key).expect("hash").as_slice()
        );
    }

    #[test]
    fn faults_are_encoded() {
        let root = VariantSpec::ca("root").self_signed().expect("root");
        let odd = VariantSpec::leaf("odd")
            .basic_constraints(Some(BasicConstraintsSpec {
                critical: false,
                ca: false,
                path_len: Some(0),
            }))
            .key_usage(Some(&[Usage::KeyCertSign]))
            .subject_key_id(KeyIdentifier::Absent)
            .authority_key_id(KeyIdentifier::Bytes(vec![1, 2, 3]))
            .authority_key_id_critical()
            .unknown_extension(true)
            .issued_by(&root)
            .expect("odd");
        let t = text(&odd.certificate);
        assert!(t.contains("pathlen:0"), "{t}");
        assert!(!t.contains("CA:TRUE"), "{t}");
        assert!(t.contains("Certificate Sign"), "{t}");
        assert!(!t.contains("Digital Signature"), "{t}");
        assert!(odd.certificate.subject_key_id().is_none());
        assert_eq!(
            odd.certificate.authority_key_id().expect("aki").as_slice(),
            &[1, 2, 3]
        );
        assert!(
            t.contains("X509v3 Authority Key Identifier: critical"),
            "{t}"
        );
        assert!(t.contains("1.3.6.1.4.1.32473.1.1: critical"), "{t}");
    }

    #[test]
    fn forged_and_tampered_signatures_do_not_verify() {
        let root = VariantSpec::ca("root").self_signed().expect("root");
        let other = KeySpec::EcP256.generate().expect("key");
        let forged = VariantSpec::leaf("forged")
            .issued_by_forged(&root, &other)
            .expect("forged");
        assert!(
            !forged
                .certificate
                .verify(&root.private_key)
                .unwrap_or(false)
        );
        let good = VariantSpec::leaf("good").issued_by(&root).expect("good");
        let tampered = tampered_signature(&good).expect("tampered");
        assert!(
            !tampered
                .certificate
                .verify(&root.private_key)
                .unwrap_or(false)
        );
        let _ = openssl::error::ErrorStack::get();
    }

    #[test]
    fn weak_and_explicit_keys() {
        let p192 = VariantKey::EcP192.generate().expect("p192");
        assert_eq!(p192.bits(), 192);
        let explicit = VariantSpec::leaf("explicit")
            .key(VariantKey::EcP256ExplicitParameters)
            .self_signed()
            .expect("explicit");
        let t = text(&explicit.certificate);
        assert!(!t.contains("NIST CURVE: P-256"), "{t}");
        assert!(t.contains("Prime:") || t.contains("Field Type"), "{t}");
    }
}
