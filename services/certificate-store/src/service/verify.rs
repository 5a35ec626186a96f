//! The trust decision, answered from the in-memory trust store.

use std::sync::Arc;

use pmp_common::auth::Caller;

use super::{CertificateStoreService, VerifyTrust, authorize};
use crate::error::StoreError;
use crate::trust::Verdict;

impl CertificateStoreService {
    /// Whether a certificate is trusted in a domain right now (see [`crate::trust`]).
    pub(crate) async fn verify(
        &self,
        caller: &Caller,
        request: VerifyTrust,
    ) -> Result<Arc<Verdict>, StoreError> {
        authorize(caller, &request)?;
        let domain = self.domain(&request.partner_domain)?;
        self.trust.verify(&domain, &request.certificate_data).await
    }
}
