//! `GetPartner` and `ListPartners`.

use pmp_common::auth::Caller;
use pmp_common::pagination;

use super::RegistryService;
use crate::domain::{Partner, PartnerFilter, PartnerStatus};
use crate::error::RegistryError;

/// One partner asked for by id (present: checked when decoded).
#[derive(Debug, Clone)]
pub(crate) struct PartnerLookup {
    pub(crate) partner_id: String,
}

/// A page of the partner list. The status filter is decoded with the request but its error
/// is reported where the contract orders it: after the admin role and the page size.
#[derive(Debug)]
pub(crate) struct PartnerQuery {
    pub(crate) page_size: i32,
    pub(crate) page_token: String,
    /// As sent (blank: any type); resolved case-insensitively to the canonical code.
    pub(crate) partner_type: String,
    pub(crate) status: Result<Option<PartnerStatus>, RegistryError>,
}

/// One page of partners.
#[derive(Debug, Clone)]
pub(crate) struct PartnerList {
    pub(crate) partners: Vec<Partner>,
    /// Empty on the last page.
    pub(crate) next_page_token: String,
    /// Partners matching the filter, on all pages.
    pub(crate) total_size: u64,
}

impl RegistryService {
    /// A partner, to itself or an admin (or a platform service allowed to read partners).
    pub(crate) async fn partner(
        &self,
        caller: &Caller,
        lookup: PartnerLookup,
    ) -> Result<Partner, RegistryError> {
        caller.require_owner_or_admin(&lookup.partner_id)?;
        self.existing_partner(&lookup.partner_id).await
    }

    /// A page of partners, for admins. Page tokens are bound to the filter they were
    /// issued for.
    pub(crate) async fn list(
        &self,
        caller: &Caller,
        query: PartnerQuery,
    ) -> Result<PartnerList, RegistryError> {
        caller.require_admin()?;
        let page_size = pagination::page_size(query.page_size)?;
        let status = query.status?;
        let filter = PartnerFilter {
            partner_type: self.partner_type_filter(&query.partner_type).await?,
            status,
        };
        let query_key = format!(
            "{:?}|{:?}",
            filter.partner_type,
            filter.status.map(PartnerStatus::as_str)
        );
        let after: Option<String> = pagination::decode_token(&query.page_token, &query_key)?;
        let page = self
            .repository
            .list_partners(&filter, after.as_deref(), page_size)
            .await?;
        let next_page_token = match (page.has_more, page.partners.last()) {
            (true, Some(last)) => pagination::encode_token(&last.partner_id, &query_key),
            _ => String::new(),
        };
        Ok(PartnerList {
            partners: page.partners,
            next_page_token,
            total_size: page.total_size,
        })
    }

    /// The canonical partner type to filter on (`None` for a blank one).
    async fn partner_type_filter(&self, requested: &str) -> Result<Option<String>, RegistryError> {
        match requested.trim() {
            "" => Ok(None),
            requested => Ok(Some(
                self.repository
                    .canonical_partner_type(requested)
                    .await?
                    .ok_or(RegistryError::UnknownPartnerType)?,
            )),
        }
    }
}
