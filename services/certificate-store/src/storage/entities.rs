//! sea-orm entities of the certificate store's tables (schema: the migration crate).

/// `ca_certificates`: the trust store.
#[allow(missing_docs)]
pub mod ca_certificates {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ca_certificates")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub certificate_id: String,
        pub partner_domain: String,
        pub ca_type: String,
        pub subject: String,
        pub issuer: String,
        pub serial_number: String,
        pub thumbprint: String,
        pub identity: String,
        pub not_before: DateTimeUtc,
        pub not_after: DateTimeUtc,
        pub upload_time: DateTimeUtc,
        pub certificate_pem: String,
        pub issuer_certificate_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `partner_certificates`: partner and FTM chip certificates.
#[allow(missing_docs)]
pub mod partner_certificates {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "partner_certificates")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub certificate_id: String,
        pub owner_type: String,
        pub owner_id: String,
        pub partner_id: String,
        pub partner_domain: String,
        pub organization_name: String,
        pub identity: String,
        pub thumbprint: String,
        pub subject: String,
        pub issuer: String,
        pub serial_number: String,
        pub not_before: DateTimeUtc,
        pub not_after: DateTimeUtc,
        pub is_ca: bool,
        pub ca_signed_pem: String,
        pub platform_signed_pem: String,
        /// PEM certificates concatenated, leaf first.
        pub chain_pem: String,
        pub trusted: bool,
        pub upload_time: DateTimeUtc,
        pub update_time: DateTimeUtc,
        /// Trust-store version at which `trusted`, `partner_id` or the row itself last
        /// changed (0 before incremental refresh existed).
        pub trust_version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `trust_versions`: one row whose version moves with every trust-relevant write.
#[allow(missing_docs)]
pub mod trust_versions {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "trust_versions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub version: i64,
        /// Last version at which a change a row delta cannot express was made.
        pub structural_version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `deactivated_partners`: partners whose certificates, and their FTMs' chip certificates,
/// are untrusted while the row exists.
#[allow(missing_docs)]
pub mod deactivated_partners {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "deactivated_partners")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub partner_id: String,
        pub deactivated_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `platform_signing_keys`: the platform's signing certificates and where their keys are.
#[allow(missing_docs)]
pub mod platform_signing_keys {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "platform_signing_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key_id: String,
        pub certificate_pem: String,
        /// Empty unless the key is in the HSM.
        pub key_label: String,
        /// Empty unless the key is a file.
        pub key_file: String,
        pub state: String,
        pub not_after: DateTimeUtc,
        pub added_at: DateTimeUtc,
        pub activated_at: Option<DateTimeUtc>,
        pub retired_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `revocations`: revoked certificates of each domain, by identity; never deleted.
#[allow(missing_docs)]
pub mod revocations {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "revocations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub partner_domain: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub identity: String,
        pub certificate_id: String,
        pub certificate_kind: String,
        pub serial_number: String,
        pub reason_code: i32,
        pub comment: String,
        pub revoked_by: String,
        pub revoked_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `trust_events`: the outbox of the trust change feed, one row per trust-store version.
#[allow(missing_docs)]
pub mod trust_events {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "trust_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i64,
        /// The event, JSON.
        pub payload: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `expiry_notices`: expiry thresholds already announced per certificate.
#[allow(missing_docs)]
pub mod expiry_notices {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "expiry_notices")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub certificate_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub threshold_days: i32,
        pub noticed_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
