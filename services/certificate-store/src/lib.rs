//! Certificate store service: the CA trust store, partner and FTM certificates, and the
//! platform signing key of the Partner Management Platform.

pub mod x509;
