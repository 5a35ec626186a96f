//! AIP-158 pagination shared by every list RPC: page-size rules and opaque page tokens.
//!
//! A page token is URL-safe base64 of a small JSON document plus a checksum over the
//! document and the query it belongs to. A token that was altered, truncated, or reused for
//! a different query (other filters or ordering) is refused with `PMS_PRT_362` instead of
//! silently returning the wrong page.

use crate::error::{Disclosure, ServiceError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A page request that cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// `PMS_PRT_361`.
    #[error("page_size must not be negative")]
    NegativePageSize,
    /// `PMS_PRT_362`: altered, truncated, or from another query.
    #[error("page_token is not valid for this query")]
    InvalidPageToken,
}

impl ServiceError for PageError {
    fn disclosure(&self) -> Disclosure<'_> {
        match self {
            PageError::NegativePageSize => Disclosure::invalid("PMS_PRT_361", "page_size"),
            PageError::InvalidPageToken => Disclosure::invalid("PMS_PRT_362", "page_token"),
        }
    }
}

/// Page size used when the request says 0.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// Largest page; bigger requests are coerced to it.
pub const MAX_PAGE_SIZE: u64 = 500;

/// Applies the AIP-158 page-size rules (`PMS_PRT_361` for a negative size).
pub fn page_size(requested: i32) -> Result<u64, PageError> {
    match requested {
        size if size < 0 => Err(PageError::NegativePageSize),
        0 => Ok(DEFAULT_PAGE_SIZE),
        size => Ok(u64::try_from(size)
            .unwrap_or(MAX_PAGE_SIZE)
            .min(MAX_PAGE_SIZE)),
    }
}

/// Encodes a position for the next page, bound to `query` (a fingerprint of filters and order).
pub fn encode_token<T: Serialize>(position: &T, query: &str) -> String {
    let body = serde_json::to_vec(position).unwrap_or_default();
    let checksum = checksum(&body, query);
    let mut bytes = checksum.to_vec();
    bytes.extend_from_slice(&body);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a token produced by [`encode_token`] for the same `query`; `None` for an empty
/// token (first page), `PMS_PRT_362` for anything else that does not check out.
pub fn decode_token<T: DeserializeOwned>(token: &str, query: &str) -> Result<Option<T>, PageError> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || PageError::InvalidPageToken;
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| invalid())?;
    if bytes.len() < 16 {
        return Err(invalid());
    }
    let (sum, body) = bytes.split_at(16);
    if sum != checksum(body, query) {
        return Err(invalid());
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|_| invalid())
}

fn checksum(body: &[u8], query: &str) -> [u8; 16] {
    let mut input = Vec::with_capacity(body.len() + query.len() + 16);
    input.extend_from_slice(b"pmp-page-token-v1");
    input.extend_from_slice(query.as_bytes());
    input.push(0);
    input.extend_from_slice(body);
    let digest = openssl::sha::sha256(&input);
    let mut sum = [0u8; 16];
    sum.copy_from_slice(&digest[..16]);
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_rules() {
        assert_eq!(page_size(0).expect("ok"), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(7).expect("ok"), 7);
        assert_eq!(page_size(100_000).expect("ok"), MAX_PAGE_SIZE);
        let error = page_size(-1).expect_err("negative");
        assert_eq!(
            crate::error::reason_of(&crate::error::status_of(&error)).as_deref(),
            Some("PMS_PRT_361")
        );
    }

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let token = encode_token(&(42u64, "x".to_owned()), "status=1");
        let decoded: Option<(u64, String)> = decode_token(&token, "status=1").expect("valid");
        assert_eq!(decoded, Some((42, "x".to_owned())));

        for bad in [
            format!("{token}A"),
            token.replacen('A', "B", 1),
            "%%%".to_owned(),
            "AAAA".to_owned(),
        ] {
            if bad == token {
                continue;
            }
            let error = decode_token::<(u64, String)>(&bad, "status=1").expect_err("tampered");
            assert_eq!(
                crate::error::reason_of(&crate::error::status_of(&error)).as_deref(),
                Some("PMS_PRT_362")
            );
        }
        let other_query =
            decode_token::<(u64, String)>(&token, "status=2").expect_err("other query");
        assert_eq!(other_query, PageError::InvalidPageToken);
    }
}
