//! What the use cases answer, beyond the stored records themselves (see `crate::convert` for
//! their wire form).

use crate::domain::{CaCertificate, CaType};

/// How much of a CA upload was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UploadStatus {
    Success,
    PartialSuccess,
    Failed,
}

/// The fate of one certificate of a CA upload.
#[derive(Debug, Clone)]
pub(crate) struct CaUploadResult {
    /// Empty when refused.
    pub(crate) certificate_id: String,
    pub(crate) thumbprint: String,
    pub(crate) ca_type: CaType,
    pub(crate) subject: String,
    /// Empty when accepted.
    pub(crate) error_reason: String,
}

/// The answer to a CA upload, one result per certificate in path order.
#[derive(Debug, Clone)]
pub(crate) struct CaUpload {
    pub(crate) status: UploadStatus,
    pub(crate) results: Vec<CaUploadResult>,
}

/// One page of CA certificates.
#[derive(Debug, Clone)]
pub(crate) struct CaList {
    pub(crate) ca_certificates: Vec<CaCertificate>,
    /// Empty on the last page.
    pub(crate) next_page_token: String,
    pub(crate) total_size: u64,
}

/// A CA certificate and its issuers up to the root.
#[derive(Debug, Clone)]
pub(crate) struct TrustPath {
    /// Leaf first.
    pub(crate) certificates_pem: Vec<String>,
    /// The same certificates as a PKCS#7 bundle (DER).
    pub(crate) p7b: Vec<u8>,
}
