//! The registry's side of its event feed (`WatchPartnerEvents`): snapshots of every
//! partner. The events themselves are recorded by [`SqlPartnerRepository`]'s writes.

use async_trait::async_trait;
use sea_orm::{EntityTrait, QueryOrder};

use pmp_common::event_feed::{self, FeedSource, Snapshot};

use super::SqlPartnerRepository;
use super::entities::partners;
use super::sql::to_domain;
use crate::domain::{PartnerEvent, PartnerState};
use crate::error::RegistryError;

#[async_trait]
impl FeedSource for SqlPartnerRepository {
    type Event = PartnerEvent;
    type State = PartnerState;
    type Error = RegistryError;

    async fn snapshot(&self) -> Result<Snapshot<PartnerState>, RegistryError> {
        let (transaction, version) = event_feed::begin_snapshot(self.connection()).await?;
        let models = partners::Entity::find()
            .order_by_asc(partners::Column::PartnerId)
            .all(&transaction)
            .await?;
        transaction.commit().await?;
        let states = models
            .into_iter()
            .map(|model| to_domain(model).map(|partner| PartnerState::from(&partner)))
            .collect::<Result<_, _>>()?;
        Ok(Snapshot { version, states })
    }
}
