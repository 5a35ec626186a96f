//! The outbox of `WatchPartnerEvents`: `event_outbox` (one row per partner change, written in
//! the change's transaction) and `event_outbox_version` (the last version given out), from
//! `pmp_common::event_feed::schema`.
//!
//! Expand-only: new tables that older releases ignore (changes an older replica makes during
//! a rolling upgrade record no event; streams resuming across the upgrade get a snapshot
//! when they need one).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        pmp_common::event_feed::schema::create(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        pmp_common::event_feed::schema::drop(manager).await
    }
}
