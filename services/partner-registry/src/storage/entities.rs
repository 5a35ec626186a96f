//! sea-orm entities of the registry's tables (see the migration crate for the schema).

// Generated shape (`Model`, `Column`, `Relation`, ...): the columns mirror the domain types,
// so only the columns with a meaning of their own are documented.
#![allow(missing_docs)]

/// `users`: credentials and roles; one row per partner plus bootstrap accounts.
pub mod users {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub username: String,
        pub password_hash: String,
        /// Comma-separated upper-case roles.
        pub roles: String,
        pub create_time: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `partners`: partner records.
pub mod partners {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "partners")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub partner_id: String,
        pub first_name: String,
        pub last_name: String,
        pub organization_name: String,
        pub partner_type: String,
        pub address: String,
        pub email: String,
        /// Lower-case e-mail, unique: duplicates are refused by the database itself.
        pub email_normalized: String,
        pub phone: String,
        pub lang_code: String,
        pub status: String,
        pub certificate_id: Option<String>,
        pub create_time: DateTimeUtc,
        pub update_time: DateTimeUtc,
        /// Lease of a step that spans the certificate store (see the service).
        pub sync_token: Option<String>,
        pub sync_expires_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `partner_types`: MOSIP's seed list.
pub mod partner_types {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "partner_types")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub code: String,
        pub code_normalized: String,
        pub description: String,
        pub is_active: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `token_signing_keys`: the keys that sign access tokens and where they are.
pub mod token_signing_keys {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "token_signing_keys")]
    pub struct Model {
        /// The `kid` of the tokens it signs.
        #[sea_orm(primary_key, auto_increment = false)]
        pub key_id: String,
        pub public_key_pem: String,
        /// Empty unless the key is in the HSM.
        pub key_label: String,
        /// Empty unless the key is a file.
        pub key_file: String,
        pub state: String,
        pub added_at: DateTimeUtc,
        pub activated_at: Option<DateTimeUtc>,
        pub retired_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
