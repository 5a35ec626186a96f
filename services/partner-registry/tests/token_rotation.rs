//! Rotation of the token signing key into the HSM without downtime: a new key is added
//! (published, not signing), then activated; tokens signed by the old key keep working
//! everywhere while they live, tokens of the new key work in the registry and in the other
//! services at once, and the audit trail records both steps.

use tonic::Code;

use pmp_common::signing::KeyAlgorithm;
use pmp_common::signing::testing::SoftHsm;
use pmp_common::testing::{assert_error, with_token};
use pmp_e2e::inprocess::{InProcessPlatform, Options, RegistryAdjust};
use pmp_proto::certstore::v1 as store;
use pmp_proto::partner::v1 as proto;

/// A JWT's header, decoded (nothing verified).
fn header_of(token: &str) -> serde_json::Value {
    use base64::Engine;
    let header = token.split('.').next().expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

fn kid_of(token: &str) -> String {
    header_of(token)["kid"]
        .as_str()
        .expect("a key id")
        .to_owned()
}

async fn published_kids(platform: &InProcessPlatform) -> Vec<String> {
    let published = platform
        .registry()
        .get_token_verification_keys(proto::GetTokenVerificationKeysRequest {})
        .await
        .expect("keys")
        .into_inner();
    let jwks: serde_json::Value = serde_json::from_str(&published.jwks).expect("JWKS");
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|key| key["kid"].as_str().expect("kid").to_owned())
        .collect();
    kids.sort();
    kids
}

/// Asserts that `token` is accepted by the registry at once and by the certificate store
/// within its key-fetch pause (a service fetches keys on an unknown key id, at most every
/// `MIN_REFRESH_PAUSE`).
async fn accepted_everywhere(platform: &InProcessPlatform, token: &str) {
    let partners = proto::ListPartnersRequest::default();
    platform
        .registry()
        .list_partners(with_token(partners, token))
        .await
        .expect("the registry accepts the token");
    let patience = pmp_common::auth::user_tokens::MIN_REFRESH_PAUSE * 2;
    let accepted = pmp_common::testing::eventually(patience, || async {
        let cas = store::ListCaCertificatesRequest::default();
        platform
            .store()
            .list_ca_certificates(with_token(cas, token))
            .await
            .is_ok()
    })
    .await;
    assert!(accepted, "the certificate store accepts the token");
}

fn add(key_label: &str, key_file: &str) -> proto::AddTokenSigningKeyRequest {
    proto::AddTokenSigningKeyRequest {
        key_label: key_label.into(),
        key_file: key_file.into(),
    }
}

#[tokio::test]
async fn the_token_key_rotates_into_the_hsm_while_earlier_tokens_keep_working() {
    let hsm = SoftHsm::start().expect("SoftHSM token");
    let hsm_settings = hsm.settings.clone();
    let adjust: RegistryAdjust = Box::new(move |settings| {
        settings.hsm = hsm_settings;
        settings.tokens.key_refresh_interval_ms = 200;
    });
    let platform = InProcessPlatform::start(Options {
        registry_adjust: Some(adjust),
        ..Options::on("sqlite")
    })
    .await
    .expect("platform");
    let before = platform.admin().await;
    let old_kid = kid_of(&before);
    assert_eq!(
        published_kids(&platform).await,
        std::slice::from_ref(&old_kid)
    );

    hsm.generate("tokens-2027", KeyAlgorithm::EcP384)
        .expect("generated");
    hsm.generate("too-small", KeyAlgorithm::EcP256)
        .expect("generated");
    let registry = platform.registry();

    // Refusals.
    let partner_token = platform
        .register("rotation-partner", "FTM_Provider", "Rotation Chips")
        .await;
    assert_error(
        registry
            .clone()
            .add_token_signing_key(with_token(add("tokens-2027", ""), &partner_token))
            .await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    for (request, field) in [
        (add("tokens-2027", "/a/file.pem"), "key_label"),
        (add("", ""), "key_label"),
        (add("no-such-key", ""), "key_label"),
        (add("", "/no/such/file.pem"), "key_file"),
    ] {
        let status = registry
            .clone()
            .add_token_signing_key(with_token(request, &before))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(
            pmp_common::error::reason_of(&status).as_deref(),
            Some("PMS_COR_001"),
            "{status:?}"
        );
        let violations = tonic_types::StatusExt::get_details_bad_request(&status)
            .expect("the field at fault")
            .field_violations;
        assert_eq!(violations[0].field, field, "{status:?}");
    }

    // Step 1: added and published; tokens still come from the old key.
    let added = registry
        .clone()
        .add_token_signing_key(with_token(add("tokens-2027", ""), &before))
        .await
        .expect("added")
        .into_inner();
    assert_eq!(added.state(), proto::TokenSigningKeyState::Next);
    assert_eq!(added.key_location, "PKCS#11 label tokens-2027");
    let mut both = vec![old_kid.clone(), added.key_id.clone()];
    both.sort();
    assert_eq!(
        published_kids(&platform).await,
        both,
        "published before it signs"
    );
    assert_eq!(kid_of(&platform.admin().await), old_kid);
    assert_error(
        registry
            .clone()
            .add_token_signing_key(with_token(add("tokens-2027", ""), &before))
            .await,
        Code::AlreadyExists,
        "PMS_KEY_EXISTS",
    );

    // Step 2: activated; new tokens are signed in the HSM; old and new both work.
    let activate = |key_id: &str| proto::ActivateTokenSigningKeyRequest {
        key_id: key_id.into(),
    };
    let activated = registry
        .clone()
        .activate_token_signing_key(with_token(activate(&added.key_id), &before))
        .await
        .expect("activated")
        .into_inner();
    assert_eq!(activated.state(), proto::TokenSigningKeyState::Active);
    let after = platform.admin().await;
    assert_eq!(kid_of(&after), added.key_id);
    assert_eq!(header_of(&after)["alg"], "ES384");
    accepted_everywhere(&platform, &before).await;
    accepted_everywhere(&platform, &after).await;
    assert_eq!(
        published_kids(&platform).await,
        both,
        "the old key stays published"
    );

    let listed = registry
        .clone()
        .list_token_signing_keys(with_token(proto::ListTokenSigningKeysRequest {}, &after))
        .await
        .expect("listed")
        .into_inner();
    let states: Vec<_> = listed
        .keys
        .iter()
        .map(|key| {
            (
                key.key_id.clone(),
                key.state(),
                key.published_until.is_some(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            (old_kid.clone(), proto::TokenSigningKeyState::Previous, true),
            (
                added.key_id.clone(),
                proto::TokenSigningKeyState::Active,
                false
            )
        ]
    );
    assert_error(
        registry
            .clone()
            .activate_token_signing_key(with_token(activate("no-such-key"), &after))
            .await,
        Code::NotFound,
        "PMS_KEY_NOT_FOUND",
    );
}
