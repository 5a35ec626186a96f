//! sea-orm entities of the service's tables (see the migration crate for the schema and its
//! indexes). The audit table is the platform-wide one of `pmp_common::audit`.

// Generated shape (`Model`, `Column`, `Relation`, ...): the columns mirror `domain::Ftm`,
// so only the columns with a meaning of their own are documented.
#![allow(missing_docs)]

/// `ftms`: one row per FTM.
pub mod ftms {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ftms")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub ftm_id: String,
        pub partner_id: String,
        pub organization_name: String,
        /// Lower-case, white space collapsed: the organisation filter.
        pub organization_name_normalized: String,
        pub make: String,
        /// Lower-case make: uniqueness key, filter and sort column.
        pub make_normalized: String,
        pub model: String,
        /// Lower-case model: uniqueness key, filter and sort column.
        pub model_normalized: String,
        pub status: String,
        pub certificate_id: Option<String>,
        pub certificate_expiry_time: Option<DateTimeUtc>,
        pub reject_reason: Option<String>,
        pub create_time: DateTimeUtc,
        pub update_time: DateTimeUtc,
        /// Lease of the cross-service step in flight (or its marker after a failure).
        pub sync_token: Option<String>,
        pub sync_expires_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
