//! Generated protobuf messages, tonic clients and servers of the three platform services.
//!
//! One crate compiles every contract so that services and clients share exactly one copy of
//! each type. [`FILE_DESCRIPTOR_SET`] feeds gRPC server reflection, so `grpcurl` and
//! reflection-driven clients work without the `.proto` files.

/// Encoded `FileDescriptorSet` of all platform packages (and the well-known types they use).
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("pmp_descriptor");

/// `mosip.pms.partner.v1`: partner registry.
pub mod partner {
    #[allow(clippy::all, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("mosip.pms.partner.v1");
    }
}

/// `mosip.pms.certstore.v1`: certificate store.
pub mod certstore {
    #[allow(clippy::all, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("mosip.pms.certstore.v1");
    }
}

/// `mosip.pms.ftm.v1`: FTM management.
pub mod ftm {
    #[allow(clippy::all, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("mosip.pms.ftm.v1");
    }
}

/// Full gRPC service names, as used by health checks and reflection.
pub mod service_names {
    /// `mosip.pms.partner.v1.PartnerRegistry`.
    pub const PARTNER_REGISTRY: &str = "mosip.pms.partner.v1.PartnerRegistry";
    /// `mosip.pms.certstore.v1.CertificateStore`.
    pub const CERTIFICATE_STORE: &str = "mosip.pms.certstore.v1.CertificateStore";
    /// `mosip.pms.ftm.v1.FtmManagement`.
    pub const FTM_MANAGEMENT: &str = "mosip.pms.ftm.v1.FtmManagement";
}
