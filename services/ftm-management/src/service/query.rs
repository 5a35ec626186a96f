//! The read-only RPCs: `GetFtm`, `GetFtmCertificate`, `ListFtms`.

use pmp_common::auth::Caller;
use pmp_common::pagination::{self, PageError};

use super::{FtmService, authorize_owner};
use crate::domain::{
    Cursor, Ftm, FtmFilter, FtmListing, FtmRef, FtmSearch, ListQuery, MAX_FILTER_CHARS, Ordering,
    search_key,
};
use crate::error::FtmError;
use crate::upstream::CertificateBundle;

impl FtmService {
    /// `GetFtm`: the owner or an admin.
    pub(crate) async fn get(&self, caller: &Caller, target: FtmRef) -> Result<Ftm, FtmError> {
        let ftm = self.load(&target.ftm_id).await?;
        authorize_owner(caller, &ftm)?;
        Ok(ftm)
    }

    /// `GetFtmCertificate`: the FTM's current chip certificate, as the store keeps it.
    pub(crate) async fn certificate(
        &self,
        caller: &Caller,
        target: FtmRef,
    ) -> Result<CertificateBundle, FtmError> {
        let ftm = self.get(caller, target).await?;
        let certificate_id = ftm.certificate_id.ok_or(FtmError::CertificateMissing)?;
        self.upstream
            .get_certificate(caller.user(), &certificate_id)
            .await
    }

    /// `ListFtms`: one page, within what the caller may see.
    pub(crate) async fn list(
        &self,
        caller: &Caller,
        search: FtmSearch,
    ) -> Result<FtmListing, FtmError> {
        let (scope, partner_id) = list_scope(caller, search.partner_id)?;
        let filter = FtmFilter {
            partner_id,
            status: search.status.map(|status| status.as_str().to_owned()),
            make: text_filter("make", &search.make)?,
            model: text_filter("model", &search.model)?,
            organization_name: text_filter("organization_name", &search.organization_name)?,
        };
        let ordering = search.ordering;
        // The token is bound to everything that defines the result set and its order.
        let fingerprint = serde_json::to_string(&("ftms-v1", &scope, &filter, &ordering))
            .map_err(|error| FtmError::Internal(error.to_string()))?;
        let after = resume_after(&search.page_token, &fingerprint, ordering)?;
        let query = ListQuery {
            filter,
            ordering,
            after,
            limit: search.limit,
        };
        let page = self.repository.list(&query).await?;
        let next_page_token = match (page.has_more, page.ftms.last()) {
            (true, Some(last)) => {
                pagination::encode_token(&Cursor::after(last, ordering.field), &fingerprint)
            }
            _ => String::new(),
        };
        Ok(FtmListing {
            ftms: page.ftms,
            next_page_token,
            total_size: page.total_size,
        })
    }
}

/// What `caller` may list, as a scope name for the page token and the partner filter:
/// admins (and platform services) everything, others only their own FTMs.
fn list_scope(
    caller: &Caller,
    requested: Option<String>,
) -> Result<(String, Option<String>), FtmError> {
    match caller {
        Caller::User(user) if !user.is_admin() => {
            if requested.is_some_and(|partner_id| partner_id != user.partner_id) {
                return Err(caller.denied().into());
            }
            Ok((
                format!("partner:{}", user.partner_id),
                Some(user.partner_id.clone()),
            ))
        }
        _ => Ok(("all".to_owned(), requested)),
    }
}

/// A substring filter as its search key; `None` when blank.
fn text_filter(field: &'static str, value: &str) -> Result<Option<String>, FtmError> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    if value.chars().count() > MAX_FILTER_CHARS {
        return Err(FtmError::InvalidField {
            field,
            message: format!("{field} must be at most {MAX_FILTER_CHARS} characters"),
        });
    }
    Ok(Some(search_key(value)))
}

/// The position a page token continues after (`None` for the first page); `PMS_PRT_362`
/// for a token of another query or ordering.
fn resume_after(
    token: &str,
    fingerprint: &str,
    ordering: Ordering,
) -> Result<Option<Cursor>, FtmError> {
    let after: Option<Cursor> = pagination::decode_token(token, fingerprint)?;
    if after
        .as_ref()
        .is_some_and(|cursor| !cursor.fits(ordering.field))
    {
        return Err(PageError::InvalidPageToken.into());
    }
    Ok(after)
}
