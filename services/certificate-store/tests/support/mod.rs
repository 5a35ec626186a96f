//! What the certificate store's gRPC suites share: test PKIs and who manages which owner.

use pmp_dev_certs::{CertificateSpec, Issued};
use pmp_proto::certstore::v1::OwnerType;

/// A root and an intermediate CA of one organisation.
pub struct Pki {
    pub root: Issued,
    pub intermediate: Issued,
}

/// A root (10 years) and an intermediate (5 years) of organisation `name`.
pub fn make_pki(name: &str) -> Pki {
    let root = CertificateSpec::ca(&format!("{name} Root"))
        .organisation(name)
        .valid_for_days(3650)
        .self_signed()
        .expect("root");
    let intermediate = CertificateSpec::ca(&format!("{name} Intermediate"))
        .organisation(name)
        .valid_for_days(1800)
        .issued_by(&root)
        .expect("intermediate");
    Pki { root, intermediate }
}

pub fn pem(issued: &Issued) -> String {
    issued.pem().expect("pem")
}

/// The service that manages certificates of `owner_type`.
pub fn manager(owner_type: OwnerType) -> &'static str {
    match owner_type {
        OwnerType::Ftm => "ftm-management",
        _ => "partner-registry",
    }
}
