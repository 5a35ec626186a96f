//! The platform signing certificate and the re-signing of accepted partner certificates
//! (MOSIP's "MOSIP-signed" copy, issued by the platform for one year).

use chrono::{DateTime, Duration, Utc};
use openssl::asn1::{Asn1Object, Asn1OctetString};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use std::sync::Arc;

use openssl::pkey::{Id, PKey, PKeyRef, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{
    X509, X509Builder, X509Extension, X509Name, X509NameBuilder, X509NameRef, X509Ref,
};
use pmp_common::signing::{InMemoryKey, KeyAlgorithm, PrivateKey, SigningError};

use super::{CertError, der, utc_to_asn1};

/// Validity of a re-signed partner certificate (MOSIP: 1 year × 365 days).
const RESIGNED_VALIDITY_DAYS: i64 = 365;
/// Validity of a generated platform root.
const ROOT_VALIDITY_DAYS: i64 = 3650;
/// Validity of a generated platform signing certificate.
const SIGNER_VALIDITY_DAYS: i64 = 1825;
/// RSA modulus of generated platform keys.
const PLATFORM_RSA_BITS: u32 = 3072;
/// Subject O of generated platform certificates.
const PLATFORM_ORGANISATION: &str = "Partner Management Platform";

/// Subject attributes copied into a re-signed certificate (MOSIP: CN, OU, O, L, ST, C).
const COPIED_ATTRIBUTES: [Nid; 6] = [
    Nid::COMMONNAME,
    Nid::ORGANIZATIONALUNITNAME,
    Nid::ORGANIZATIONNAME,
    Nid::LOCALITYNAME,
    Nid::STATEORPROVINCENAME,
    Nid::COUNTRYNAME,
];

/// The platform's signing certificate and key, which issue the platform-signed copy of
/// every accepted partner/FTM certificate. The key is in memory (a file) or in an HSM.
#[derive(Clone)]
pub struct PlatformSigner {
    /// The signing certificate (a CA issued by the platform root).
    pub certificate: X509,
    /// Its private key.
    key: Arc<dyn PrivateKey>,
    /// For a key outside this process: a throw-away key of the same kind, with which OpenSSL
    /// builds each copy (fixing its signature algorithm) before the real key signs it.
    placeholder: Option<PKey<Private>>,
}

impl std::fmt::Debug for PlatformSigner {
    // Never prints the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformSigner")
            .field(
                "subject",
                &super::facts::one_line_name(self.certificate.subject_name()),
            )
            .finish_non_exhaustive()
    }
}

/// A freshly generated platform PKI, to be persisted by the service (as PEM files or in
/// a secret store) on first start.
#[derive(Debug, Clone)]
pub struct GeneratedPlatformPki {
    /// Self-signed platform root (CA, 10 years).
    pub root_certificate: X509,
    /// The root's key; needed only to issue a new signing certificate later, so it can be
    /// kept offline.
    pub root_private_key: PKey<Private>,
    /// The signing certificate (CA, issued by the root, 5 years) and its key.
    pub signer: PlatformSigner,
}

impl PlatformSigner {
    /// Generates a platform root and a signing certificate issued by it (RSA-3072,
    /// SHA-256), so a new deployment needs no externally provisioned key material.
    pub fn generate() -> Result<GeneratedPlatformPki, CertError> {
        let signer_key = PKey::from_rsa(Rsa::generate(PLATFORM_RSA_BITS)?)?;
        let (root, root_key, signer) = issue_platform_pki(&signer_key)?;
        Ok(GeneratedPlatformPki {
            root_certificate: root,
            root_private_key: root_key,
            signer: PlatformSigner::new(
                signer,
                Arc::new(
                    InMemoryKey::new(signer_key, "the generated platform signing key")
                        .map_err(signing_error)?,
                ),
            )?,
        })
    }

    /// A new platform root and a signing certificate it issues for `signing_key`, a public
    /// key whose private half is elsewhere (an HSM's key ceremony); the root's private key is
    /// dropped. For development and tests: production roots come from the authority's CA.
    pub fn issue_for_key(
        signing_key: &openssl::pkey::PKeyRef<openssl::pkey::Public>,
    ) -> Result<(X509, X509), CertError> {
        let (root, _, signer) = issue_platform_pki(signing_key)?;
        Ok((root, signer))
    }

    /// A signing certificate (CA, 5 years) for `signing_key` issued by the platform root
    /// `root` with its key: what the authority does in a key ceremony or a rotation.
    pub fn issue_signing_certificate<T: openssl::pkey::HasPublic>(
        root: &X509,
        root_key: &PKeyRef<Private>,
        signing_key: &PKeyRef<T>,
    ) -> Result<X509, CertError> {
        let signer_name = platform_name("Partner Management Platform Signing CA")?;
        build_ca(
            &signer_name,
            signing_key,
            Some(root),
            root_key,
            Utc::now(),
            SIGNER_VALIDITY_DAYS,
        )
    }

    /// A signer of `certificate` with `key` (in memory or in an HSM). Refuses a key that does
    /// not belong to the certificate, which would otherwise only surface as unverifiable
    /// copies.
    pub fn new(certificate: X509, key: Arc<dyn PrivateKey>) -> Result<Self, CertError> {
        if !certificate.public_key()?.public_eq(key.public_key()) {
            return Err(CertError::Internal(
                "platform signing key does not match its certificate".into(),
            ));
        }
        let placeholder = match key.in_memory() {
            Some(_) => None,
            None => Some(placeholder_key(key.algorithm())?),
        };
        Ok(PlatformSigner {
            certificate,
            key,
            placeholder,
        })
    }

    /// Loads a signer from PEM (certificate, and unencrypted PKCS#8 or traditional private
    /// key). Refuses a key that does not belong to the certificate, which would otherwise
    /// only surface as unverifiable re-signed certificates.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let certificate = X509::from_pem(cert_pem.as_bytes()).map_err(|_| {
            CertError::Internal("platform signing certificate PEM does not parse".into())
        })?;
        let key = InMemoryKey::from_pem(key_pem.as_bytes(), "platform signing key")
            .map_err(|_| CertError::Internal("platform signing key PEM does not parse".into()))?;
        Self::new(certificate, Arc::new(key))
    }

    /// Where the key is, for log lines.
    pub fn describe_key(&self) -> String {
        self.key.describe()
    }

    /// The signing certificate as PEM.
    pub fn certificate_pem(&self) -> Result<String, CertError> {
        super::pem_string(&self.certificate)
    }

    /// The private key as unencrypted PKCS#8 PEM, for persisting a generated development key
    /// (protect the file); an HSM key never leaves its token.
    pub fn private_key_pem(&self) -> Result<String, CertError> {
        let key = self
            .key
            .in_memory()
            .ok_or_else(|| CertError::Internal("the platform signing key is in an HSM".into()))?;
        String::from_utf8(key.private_key_to_pem_pkcs8()?)
            .map_err(|e| CertError::Internal(format!("key PEM is not UTF-8: {e}")))
    }

    /// Issues the platform-signed copy of an accepted partner/FTM certificate, valid from
    /// now for 365 days. See [`PlatformSigner::resign_at`].
    pub fn resign(&self, partner: &X509Ref) -> Result<X509, CertError> {
        self.resign_at(partner, Utc::now())
    }

    /// Issues the platform-signed copy at a given time: the partner's public key; subject
    /// rebuilt from its CN, OU, O, L, ST and C only (in its original order; a missing CN is
    /// tolerated, never a panic); issuer = the signing certificate's subject; validity
    /// `now` → `now` + 365 days; random positive 159-bit serial; subject and authority key
    /// identifiers; signed with SHA-256.
    ///
    /// The copy never grants more than the original: its basicConstraints (CA flag and
    /// pathLen), keyUsage and extendedKeyUsage are the original's, byte for byte and with
    /// the same criticality, and absent when the original has none. A copy of a CA:FALSE
    /// chip certificate can therefore never issue certificates under the platform's name.
    pub fn resign_at(&self, partner: &X509Ref, now: DateTime<Utc>) -> Result<X509, CertError> {
        let subject = copied_subject(partner.subject_name())?;
        let public_key = partner.public_key()?;

        let mut builder = X509Builder::new()?;
        builder.set_version(2)?;
        let serial = random_serial()?;
        builder.set_serial_number(&serial)?;
        builder.set_subject_name(&subject)?;
        builder.set_issuer_name(self.certificate.subject_name())?;
        builder.set_pubkey(&public_key)?;
        set_validity(&mut builder, now, RESIGNED_VALIDITY_DAYS)?;

        let original = partner.to_der()?;
        for oid in COPIED_EXTENSIONS {
            if let Some(extension) = copied_extension(&original, oid)? {
                builder.append_extension(extension)?;
            }
        }
        let skid = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None))?;
        builder.append_extension(skid)?;
        let akid = AuthorityKeyIdentifier::new()
            .keyid(false)
            .build(&builder.x509v3_context(Some(&self.certificate), None))?;
        builder.append_extension(akid)?;

        let digest = self.key.algorithm().digest();
        match (self.key.in_memory(), &self.placeholder) {
            (Some(key), _) => {
                builder.sign(key, digest)?;
                Ok(builder.build())
            }
            (None, Some(placeholder)) => {
                builder.sign(placeholder, digest)?;
                self.signed_by_key(&builder.build())
            }
            (None, None) => Err(CertError::Internal("no way to sign the copy".into())),
        }
    }

    /// The kind of the signing key, which fixes the signature algorithm.
    pub(crate) fn key_algorithm(&self) -> KeyAlgorithm {
        self.key.algorithm()
    }

    /// Signs `message` with the signing key (hashing included), as the signature of an
    /// X.509 structure wants it.
    pub(crate) fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, CertError> {
        self.key.sign(message).map_err(signing_error)
    }

    /// `built` (signed by the placeholder) with its signature replaced by the real key's
    /// over the same to-be-signed bytes; checked before it is returned, so a misbehaving
    /// token can never produce a copy that does not verify.
    fn signed_by_key(&self, built: &X509Ref) -> Result<X509, CertError> {
        let der = built.to_der()?;
        let malformed = || CertError::Internal("OpenSSL built a malformed certificate".into());
        let outer = der::expect(&der, der::SEQUENCE).ok_or_else(malformed)?;
        let (tbs, rest) = der::read(outer.content).ok_or_else(malformed)?;
        let (algorithm, _) = der::read(rest).ok_or_else(malformed)?;
        let signature = self.sign_bytes(tbs.raw)?;
        let mut bit_string = vec![0x00];
        bit_string.extend(signature);
        let mut content = tbs.raw.to_vec();
        content.extend(algorithm.raw);
        der::write(der::BIT_STRING, &bit_string, &mut content);
        let certificate = X509::from_der(&der::encode(der::SEQUENCE, &content))?;
        if !certificate.verify(self.key.public_key())? {
            return Err(CertError::Internal(
                "the signing key produced a signature that does not verify".into(),
            ));
        }
        Ok(certificate)
    }
}

/// A new self-signed platform root (RSA-3072, 10 years), its key, and the signing
/// certificate (5 years) it issues for `signing_key`.
fn issue_platform_pki<T: openssl::pkey::HasPublic>(
    signing_key: &PKeyRef<T>,
) -> Result<(X509, PKey<Private>, X509), CertError> {
    let now = Utc::now();
    let root_key = PKey::from_rsa(Rsa::generate(PLATFORM_RSA_BITS)?)?;
    let root_name = platform_name("Partner Management Platform Root CA")?;
    let root = build_ca(
        &root_name,
        &root_key,
        None,
        &root_key,
        now,
        ROOT_VALIDITY_DAYS,
    )?;
    let signer_name = platform_name("Partner Management Platform Signing CA")?;
    let signer = build_ca(
        &signer_name,
        signing_key,
        Some(&root),
        &root_key,
        now,
        SIGNER_VALIDITY_DAYS,
    )?;
    Ok((root, root_key, signer))
}

/// A throw-away private key of the same kind as `algorithm` (so that the signature algorithm
/// OpenSSL writes into a certificate is the real key's).
fn placeholder_key(algorithm: KeyAlgorithm) -> Result<PKey<Private>, CertError> {
    let curve = |nid| -> Result<PKey<Private>, CertError> {
        let group = openssl::ec::EcGroup::from_curve_name(nid)?;
        Ok(PKey::from_ec_key(openssl::ec::EcKey::generate(&group)?)?)
    };
    match algorithm {
        KeyAlgorithm::Rsa { .. } => Ok(PKey::from_rsa(Rsa::generate(2048)?)?),
        KeyAlgorithm::EcP256 => curve(Nid::X9_62_PRIME256V1),
        KeyAlgorithm::EcP384 => curve(Nid::SECP384R1),
    }
}

/// A key that could not sign: `Unavailable` when its HSM could not be reached.
fn signing_error(error: SigningError) -> CertError {
    match error {
        SigningError::Unavailable(reason) => CertError::SigningUnavailable(reason),
        other => CertError::Internal(other.to_string()),
    }
}

/// Extensions copied verbatim from the original into its platform-signed copy: (DER
/// contents of the OID, dotted OID).
const COPIED_EXTENSIONS: [(&[u8], &str); 3] = [
    (super::facts::OID_BASIC_CONSTRAINTS, "2.5.29.19"),
    (super::facts::OID_KEY_USAGE, "2.5.29.15"),
    (super::facts::OID_EXTENDED_KEY_USAGE, "2.5.29.37"),
];

/// The extension `oid` of `original` (DER), rebuilt with the same criticality and value,
/// if the original has it.
fn copied_extension(
    original: &[u8],
    (oid, dotted): (&[u8], &str),
) -> Result<Option<X509Extension>, CertError> {
    let Some(raw) = super::der::extension(original, oid) else {
        return Ok(None);
    };
    let object = Asn1Object::from_str(dotted)?;
    let value = Asn1OctetString::new_from_bytes(&raw.value)?;
    Ok(Some(X509Extension::new_from_der(
        &object,
        raw.critical,
        &value,
    )?))
}

/// Copies the CN, OU, O, L, ST and C entries of `name`, keeping their order and string
/// types; every other attribute (e-mail, serialNumber, ...) is dropped, as in MOSIP.
fn copied_subject(name: &X509NameRef) -> Result<X509Name, CertError> {
    let mut builder = X509NameBuilder::new()?;
    for entry in name.entries() {
        if COPIED_ATTRIBUTES.contains(&entry.object().nid()) {
            builder.append_entry(entry)?;
        }
    }
    Ok(builder.build())
}

fn platform_name(common_name: &str) -> Result<X509Name, CertError> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, PLATFORM_ORGANISATION)?;
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    Ok(name.build())
}

/// Builds a platform CA certificate; self-signed when `issuer` is `None`.
fn build_ca<T: openssl::pkey::HasPublic>(
    subject: &X509NameRef,
    key: &PKeyRef<T>,
    issuer: Option<&X509>,
    issuer_key: &PKeyRef<Private>,
    now: DateTime<Utc>,
    days: i64,
) -> Result<X509, CertError> {
    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    let serial = random_serial()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(subject)?;
    builder.set_issuer_name(issuer.map_or(subject, |i| i.subject_name()))?;
    builder.set_pubkey(key)?;
    set_validity(&mut builder, now, days)?;
    builder.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    builder.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_cert_sign()
            .crl_sign()
            .build()?,
    )?;
    let skid = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None))?;
    builder.append_extension(skid)?;
    if let Some(issuer) = issuer {
        let akid = AuthorityKeyIdentifier::new()
            .keyid(false)
            .build(&builder.x509v3_context(Some(issuer), None))?;
        builder.append_extension(akid)?;
    }
    builder.sign(issuer_key, signing_digest(issuer_key))?;
    Ok(builder.build())
}

fn set_validity(
    builder: &mut X509Builder,
    from: DateTime<Utc>,
    days: i64,
) -> Result<(), CertError> {
    let until = from
        .checked_add_signed(Duration::days(days))
        .ok_or_else(|| CertError::Internal("validity end out of range".into()))?;
    let not_before = utc_to_asn1(from)?;
    let not_after = utc_to_asn1(until)?;
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    Ok(())
}

/// A random positive serial: 159 random bits with the top one set, so it is never zero,
/// always 20 octets in DER and never negative (MOSIP's signed 64-bit serials could be).
fn random_serial() -> Result<openssl::asn1::Asn1Integer, CertError> {
    let mut bn = BigNum::new()?;
    bn.rand(159, MsbOption::ONE, false)?;
    Ok(bn.to_asn1_integer()?)
}

/// SHA-256, except for EdDSA signing keys which take no separate digest.
fn signing_digest(key: &PKeyRef<Private>) -> MessageDigest {
    match key.id() {
        Id::ED25519 | Id::ED448 => MessageDigest::null(),
        _ => MessageDigest::sha256(),
    }
}
