//! The registry's gRPC API against a real in-process server: every RPC, its error reasons
//! (code and ErrorInfo reason), and the authentication/ownership rules.

use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;

use partner_registry::testing::{self, TEST_ADMIN_PASSWORD};
use pmp_common::auth::Claims;
use pmp_common::testing::{
    Spawned, assert_error, health_status, reflection_services, wait_until_serving, with_token,
};
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;
use pmp_proto::partner::v1::*;
use pmp_proto::service_names::PARTNER_REGISTRY;

mod support;

use support::{Registry, UNREACHABLE_STORE, registration};

#[tokio::test]
async fn register_and_login_as_partner() {
    let registry = Registry::start().await;
    let partner = registry
        .register(registration("acme"))
        .await
        .expect("registered");
    assert_eq!(partner.partner_type, "FTM_Provider", "stored canonical");
    assert_eq!(partner.status(), PartnerStatus::InProgress);
    assert_eq!(partner.lang_code, "eng");
    assert!(partner.certificate_id.is_empty());

    let response = registry
        .client()
        .login(LoginRequest {
            username: "acme".into(),
            password: "partner-password".into(),
        })
        .await
        .expect("login")
        .into_inner();
    assert_eq!(response.token_type, "Bearer");
    assert_eq!(response.roles, ["FTM_PROVIDER"]);
    assert!(response.expires_in > 0);

    let own = registry
        .client()
        .get_partner(with_token(
            GetPartnerRequest {
                partner_id: "acme".into(),
            },
            &response.access_token,
        ))
        .await
        .expect("own record")
        .into_inner();
    assert_eq!(own.organization_name, "ACME Chips Ltd");
    assert_eq!(own.email, "acme@acme.example");
}

#[tokio::test]
async fn registration_errors_have_their_reasons() {
    let registry = Registry::start().await;
    let cases: Vec<(RegisterPartnerRequest, Code, &str)> = vec![
        (
            RegisterPartnerRequest {
                first_name: "".into(),
                ..registration("p1")
            },
            Code::InvalidArgument,
            "PMS_COR_001",
        ),
        (
            RegisterPartnerRequest {
                partner_id: "".into(),
                ..registration("p1")
            },
            Code::InvalidArgument,
            "PMS_COR_001",
        ),
        (
            RegisterPartnerRequest {
                organization_name: "o".repeat(129),
                ..registration("p1")
            },
            Code::InvalidArgument,
            "PMS_COR_001",
        ),
        (
            RegisterPartnerRequest {
                email: "nope".into(),
                ..registration("p1")
            },
            Code::InvalidArgument,
            "PMS_PRT_012",
        ),
        (
            RegisterPartnerRequest {
                phone: "call me".into(),
                ..registration("p1")
            },
            Code::InvalidArgument,
            "PMS_PRT_013",
        ),
        (
            RegisterPartnerRequest {
                partner_id: "has space".into(),
                ..registration("p1")
            },
            Code::InvalidArgument,
            "PMS_PRT_066",
        ),
        (
            RegisterPartnerRequest {
                partner_id: "x".repeat(37),
                ..registration("p1")
            },
            Code::InvalidArgument,
            "PMS_PRT_052",
        ),
        (
            RegisterPartnerRequest {
                partner_type: "Chip_Maker".into(),
                ..registration("p1")
            },
            Code::InvalidArgument,
            "PMS_PRT_010",
        ),
        (
            RegisterPartnerRequest {
                password: "short".into(),
                ..registration("p1")
            },
            Code::InvalidArgument,
            "PMS_PRT_014",
        ),
        (
            RegisterPartnerRequest {
                password: "p1".into(),
                ..registration("p1")
            },
            Code::InvalidArgument,
            "PMS_PRT_014",
        ),
        (
            RegisterPartnerRequest {
                lang_code: "xyz".into(),
                ..registration("p1")
            },
            Code::InvalidArgument,
            "PMS_PRT_056",
        ),
    ];
    for (request, code, reason) in cases {
        assert_error(registry.register(request).await, code, reason);
    }
    let violations = registry
        .register(RegisterPartnerRequest {
            email: "nope".into(),
            ..registration("p1")
        })
        .await
        .expect_err("invalid");
    let bad_request =
        tonic_types::StatusExt::get_details_bad_request(&violations).expect("field violations");
    assert_eq!(bad_request.field_violations[0].field, "email");

    registry
        .register(registration("p1"))
        .await
        .expect("first registration");
    assert_error(
        registry.register(registration("p1")).await,
        Code::AlreadyExists,
        "PMS_PRT_051",
    );
    let same_email = RegisterPartnerRequest {
        email: "P1@ACME.example".into(),
        ..registration("p2")
    };
    assert_error(
        registry.register(same_email).await,
        Code::AlreadyExists,
        "PMS_PRT_011",
    );
    let french = registry
        .register(RegisterPartnerRequest {
            lang_code: "FRA".into(),
            ..registration("p3")
        })
        .await
        .expect("supported language");
    assert_eq!(french.lang_code, "fra");
}

#[tokio::test]
async fn login_failures_do_not_reveal_which_part_was_wrong() {
    let registry = Registry::start().await;
    registry
        .register(registration("acme"))
        .await
        .expect("registered");
    let wrong_password = registry
        .client()
        .login(LoginRequest {
            username: "acme".into(),
            password: "not-the-password".into(),
        })
        .await;
    let unknown_user = registry
        .client()
        .login(LoginRequest {
            username: "nobody".into(),
            password: "partner-password".into(),
        })
        .await;
    let (first, second) = (
        wrong_password.expect_err("refused"),
        unknown_user.expect_err("refused"),
    );
    assert_eq!(first.code(), Code::Unauthenticated);
    assert_eq!(first.message(), second.message());
    assert_error(Err::<(), _>(first), Code::Unauthenticated, "KER-ATH-401");
    assert_error(Err::<(), _>(second), Code::Unauthenticated, "KER-ATH-401");
    assert_error(
        registry
            .client()
            .login(LoginRequest {
                username: "".into(),
                password: "".into(),
            })
            .await,
        Code::InvalidArgument,
        "PMS_COR_001",
    );
}

#[tokio::test]
async fn get_partner_enforces_authentication_and_ownership() {
    let registry = Registry::start().await;
    registry
        .register(registration("alice"))
        .await
        .expect("alice");
    registry.register(registration("bob")).await.expect("bob");
    let alice = registry.login("alice", "partner-password").await;
    let admin = registry.admin_token().await;
    let get = |token: Option<String>, id: &str| {
        let mut client = registry.client();
        let request = GetPartnerRequest {
            partner_id: id.into(),
        };
        async move {
            match token {
                Some(token) => client.get_partner(with_token(request, &token)).await,
                None => client.get_partner(request).await,
            }
        }
    };

    assert!(get(Some(alice.clone()), "alice").await.is_ok());
    assert!(get(Some(admin.clone()), "bob").await.is_ok());
    assert_error(
        get(Some(alice.clone()), "bob").await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    assert_error(
        get(None, "alice").await,
        Code::Unauthenticated,
        "KER-ATH-401",
    );
    assert_error(
        get(Some("garbage".into()), "alice").await,
        Code::Unauthenticated,
        "KER-ATH-401",
    );
    let foreign = pmp_common::auth::testing::TestTokens::new().token("alice", &["FTM_PROVIDER"]);
    assert_error(
        get(Some(foreign), "alice").await,
        Code::Unauthenticated,
        "KER-ATH-401",
    );
    let now = chrono::Utc::now().timestamp() as u64;
    let expired = registry
        .registry_key_issuer()
        .sign(&Claims {
            sub: "alice".into(),
            preferred_username: Some("alice".into()),
            roles: vec!["FTM_PROVIDER".into()],
            iss: "pmp-partner-registry".into(),
            aud: "pmp".into(),
            iat: now - 3600,
            exp: now - 1800,
            ..Claims::default()
        })
        .expect("token");
    assert_error(
        get(Some(expired), "alice").await,
        Code::Unauthenticated,
        "KER-ATH-401",
    );
    assert_error(
        get(Some(admin), "nobody").await,
        Code::NotFound,
        "PMS_PRT_005",
    );
}

#[tokio::test]
async fn list_partners_is_admin_only_paginated_and_filtered() {
    let registry = Registry::start().await;
    for index in 0..7 {
        registry
            .register(registration(&format!("ftm-{index}")))
            .await
            .expect("registered");
    }
    let device = RegisterPartnerRequest {
        partner_type: "device_provider".into(),
        ..registration("dev-1")
    };
    registry.register(device).await.expect("device provider");
    let admin = registry.admin_token().await;

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let request = ListPartnersRequest {
            page_size: 3,
            page_token: token.clone(),
            partner_type: "FTM_Provider".into(),
            status: PartnerStatus::InProgress as i32,
        };
        let page = registry
            .client()
            .list_partners(with_token(request, &admin))
            .await
            .expect("page")
            .into_inner();
        assert_eq!(page.total_size, 7);
        assert!(page.partners.len() <= 3);
        seen.extend(page.partners.into_iter().map(|partner| partner.partner_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected: Vec<String> = (0..7).map(|index| format!("ftm-{index}")).collect();
    assert_eq!(seen, expected);

    let all = registry
        .client()
        .list_partners(with_token(ListPartnersRequest::default(), &admin))
        .await
        .expect("all")
        .into_inner();
    assert_eq!(all.total_size, 8);
    assert!(all.next_page_token.is_empty());

    let partner = registry.login("ftm-0", "partner-password").await;
    assert_error(
        registry
            .client()
            .list_partners(with_token(ListPartnersRequest::default(), &partner))
            .await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    assert_error(
        registry
            .client()
            .list_partners(ListPartnersRequest::default())
            .await,
        Code::Unauthenticated,
        "KER-ATH-401",
    );
    let negative = ListPartnersRequest {
        page_size: -1,
        ..Default::default()
    };
    assert_error(
        registry
            .client()
            .list_partners(with_token(negative, &admin))
            .await,
        Code::InvalidArgument,
        "PMS_PRT_361",
    );
    let tampered = ListPartnersRequest {
        page_token: "bm90LWEtdG9rZW4".into(),
        ..Default::default()
    };
    assert_error(
        registry
            .client()
            .list_partners(with_token(tampered, &admin))
            .await,
        Code::InvalidArgument,
        "PMS_PRT_362",
    );
}

#[tokio::test]
async fn set_partner_active_is_admin_only_and_audited() {
    let registry = Registry::start().await;
    registry
        .register(registration("acme"))
        .await
        .expect("registered");
    let admin = registry.admin_token().await;
    let partner_token = registry.login("acme", "partner-password").await;
    let set = |token: String, active: bool| {
        let mut client = registry.client();
        async move {
            client
                .set_partner_active(with_token(
                    SetPartnerActiveRequest {
                        partner_id: "acme".into(),
                        active,
                    },
                    &token,
                ))
                .await
        }
    };
    assert_error(
        set(partner_token.clone(), false).await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    let deactivated = set(admin.clone(), false)
        .await
        .expect("deactivated")
        .into_inner();
    assert_eq!(deactivated.status(), PartnerStatus::Deactivated);
    // Without a certificate, re-activation returns the partner to IN_PROGRESS.
    let reactivated = set(admin.clone(), true)
        .await
        .expect("re-activated")
        .into_inner();
    assert_eq!(reactivated.status(), PartnerStatus::InProgress);
    let unknown = SetPartnerActiveRequest {
        partner_id: "nobody".into(),
        active: false,
    };
    assert_error(
        registry
            .client()
            .set_partner_active(with_token(unknown, &admin))
            .await,
        Code::NotFound,
        "PMS_PRT_005",
    );
}

#[tokio::test]
async fn certificate_rpcs_check_partner_and_store_availability() {
    let registry = Registry::start().await;
    registry.register(registration("acme")).await.expect("acme");
    registry
        .register(registration("other"))
        .await
        .expect("other");
    let admin = registry.admin_token().await;
    let acme = registry.login("acme", "partner-password").await;
    let upload = |token: String, partner_id: &str, data: &str| {
        let mut client = registry.client();
        let request = UploadPartnerCertificateRequest {
            partner_id: partner_id.into(),
            certificate_data: data.into(),
            partner_domain: "FTM".into(),
        };
        async move {
            client
                .upload_partner_certificate(with_token(request, &token))
                .await
        }
    };
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    assert_error(
        upload(acme.clone(), "other", pem).await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    assert_error(
        upload(acme.clone(), "acme", "").await,
        Code::InvalidArgument,
        "PMS_COR_001",
    );
    assert_error(
        upload(admin.clone(), "nobody", pem).await,
        Code::NotFound,
        "PMS_PRT_005",
    );
    // The store is unreachable: UNAVAILABLE, and the partner is unchanged.
    let unavailable = upload(acme.clone(), "acme", pem)
        .await
        .expect_err("store down");
    assert_eq!(unavailable.code(), Code::Unavailable);
    assert!(
        !unavailable.message().contains("127.0.0.1"),
        "no internals: {}",
        unavailable.message()
    );
    let partner = registry
        .client()
        .get_partner(with_token(
            GetPartnerRequest {
                partner_id: "acme".into(),
            },
            &acme,
        ))
        .await
        .expect("partner")
        .into_inner();
    assert_eq!(partner.status(), PartnerStatus::InProgress);
    assert!(partner.certificate_id.is_empty());

    assert_error(
        registry
            .client()
            .get_partner_certificate(with_token(
                GetPartnerCertificateRequest {
                    partner_id: "acme".into(),
                },
                &acme,
            ))
            .await,
        Code::NotFound,
        "KER-PCM-012",
    );
    assert_error(
        registry
            .client()
            .get_partner_certificate(with_token(
                GetPartnerCertificateRequest {
                    partner_id: "other".into(),
                },
                &acme,
            ))
            .await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );

    let deactivate = SetPartnerActiveRequest {
        partner_id: "acme".into(),
        active: false,
    };
    registry
        .client()
        .set_partner_active(with_token(deactivate, &admin))
        .await
        .expect("deactivated");
    assert_error(
        upload(acme, "acme", pem).await,
        Code::FailedPrecondition,
        "PMS_PMP_016",
    );
}

#[tokio::test]
async fn token_keys_are_published_and_verify_login_tokens() {
    let registry = Registry::start().await;
    let keys = registry
        .client()
        .get_token_verification_keys(GetTokenVerificationKeysRequest {})
        .await
        .expect("keys")
        .into_inner();
    let from_pem: Vec<_> = keys
        .public_keys_pem
        .iter()
        .map(|pem| pmp_common::auth::VerificationKey::from_pem(pem).expect("usable key"))
        .collect();
    let from_jwks = pmp_common::auth::user_tokens::keys_of_jwks(&keys.jwks).expect("JWKS");
    assert_eq!(from_jwks.len(), 1);
    assert_eq!(
        from_jwks[0].kid, from_pem[0].kid,
        "the JWKS names the same key"
    );
    let verifier =
        pmp_common::auth::UserTokenVerifier::new(&keys.issuer, &keys.audience, 30, from_jwks, None);
    let admin = verifier
        .verify(&registry.admin_token().await)
        .expect("verifies");
    assert_eq!(admin.partner_id, "admin");
    assert!(admin.is_admin());
}

#[tokio::test]
async fn concurrent_registrations_of_one_id_create_exactly_one_partner() {
    for backend in pmp_common::db::testing::backends() {
        let registry = Registry::start_with(backend, |_| {}).await;
        let client = registry.client();
        let attempts = (0..20).map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move { client.register_partner(registration("same-id")).await })
        });
        let results = futures::future::join_all(attempts).await;
        let mut successes = 0;
        for result in results {
            match result.expect("task") {
                Ok(_) => successes += 1,
                Err(status) => {
                    assert_eq!(status.code(), Code::AlreadyExists, "{backend}: {status:?}");
                    let reason = pmp_common::error::reason_of(&status);
                    assert_eq!(
                        reason.as_deref(),
                        Some("PMS_PRT_051"),
                        "{backend}: {status:?}"
                    );
                }
            }
        }
        assert_eq!(successes, 1, "{backend}");
        let admin = {
            let mut client = client.clone();
            client
                .login(LoginRequest {
                    username: "admin".into(),
                    password: TEST_ADMIN_PASSWORD.into(),
                })
                .await
                .expect("admin")
                .into_inner()
                .access_token
        };
        let listed = client
            .clone()
            .list_partners(with_token(ListPartnersRequest::default(), &admin))
            .await
            .expect("list")
            .into_inner();
        assert_eq!(listed.total_size, 1, "{backend}: one row stored");
        registry.stop().await;
    }
}

#[tokio::test]
async fn health_turns_serving_once_the_database_is_ready_and_reflection_lists_services() {
    let directory = tempfile::tempdir().expect("tempdir");
    // The database directory cannot be created while a plain file sits in its place.
    let blocker = directory.path().join("db");
    std::fs::write(&blocker, b"not a directory").expect("blocker");
    let database = pmp_common::config::DatabaseSettings {
        url: format!("sqlite://{}/registry.db", blocker.display()),
        url_file: String::new(),
        max_connections: 2,
    };
    let settings = testing::settings(
        directory.path(),
        database,
        UNREACHABLE_STORE,
        &pmp_common::auth::testing::ServiceKeyFiles::generate(&directory.path().join("keys"))
            .expect("keys"),
    )
    .expect("settings");
    let server = testing::spawn(settings).await.expect("spawn");
    // The database cannot open while the blocker exists, so nothing can make the service
    // ready before the blocker goes: no need to wait for anything before asserting.
    let channel = connect_when_listening(&server).await;
    assert_eq!(
        health_status(channel.clone(), PARTNER_REGISTRY)
            .await
            .expect("health"),
        tonic_health::pb::health_check_response::ServingStatus::NotServing
    );
    assert_eq!(
        health_status(channel.clone(), "").await.expect("health"),
        tonic_health::pb::health_check_response::ServingStatus::NotServing
    );
    let early = PartnerRegistryClient::new(channel.clone())
        .register_partner(registration("early"))
        .await;
    assert_eq!(early.expect_err("not ready").code(), Code::Unavailable);

    std::fs::remove_file(&blocker).expect("remove blocker");
    wait_until_serving(&server.address, PARTNER_REGISTRY, Duration::from_secs(20))
        .await
        .expect("serving");
    wait_until_serving(&server.address, "", Duration::from_secs(5))
        .await
        .expect("serving overall");

    let services = reflection_services(channel).await.expect("reflection");
    assert!(
        services.contains(&PARTNER_REGISTRY.to_owned()),
        "{services:?}"
    );
    assert!(
        services.contains(&"grpc.health.v1.Health".to_owned()),
        "{services:?}"
    );
    server.stop().await.expect("clean stop");
}

async fn connect_when_listening(server: &Spawned) -> Channel {
    for _ in 0..100 {
        if let Ok(channel) = server.channel().await {
            return channel;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server never listened");
}

/// The authentication matrix for every RPC that needs a caller: no token, a token with a
/// bad signature, an expired token → UNAUTHENTICATED; another partner or a missing role →
/// PERMISSION_DENIED.
#[tokio::test]
async fn every_authenticated_rpc_checks_token_role_and_ownership() {
    let registry = Registry::start().await;
    registry
        .register(registration("alice"))
        .await
        .expect("alice");
    registry.register(registration("bob")).await.expect("bob");
    let bob = registry.login("bob", "partner-password").await;
    let foreign = pmp_common::auth::testing::TestTokens::new().token("alice", &["PARTNER_ADMIN"]);
    let now = chrono::Utc::now().timestamp() as u64;
    let expired = registry
        .registry_key_issuer()
        .sign(&Claims {
            sub: "alice".into(),
            preferred_username: Some("alice".into()),
            roles: vec!["PARTNER_ADMIN".into()],
            iss: "pmp-partner-registry".into(),
            aud: "pmp".into(),
            iat: now - 3600,
            exp: now - 60,
            ..Claims::default()
        })
        .expect("token");

    // Each RPC acting on alice's records, called with `token` (None = no metadata).
    async fn call(
        client: PartnerRegistryClient<Channel>,
        rpc: &str,
        token: Option<&str>,
    ) -> Result<(), tonic::Status> {
        fn request<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
            match token {
                Some(token) => with_token(message, token),
                None => tonic::Request::new(message),
            }
        }
        let mut client = client;
        let alice = || "alice".to_owned();
        match rpc {
            "GetPartner" => client
                .get_partner(request(
                    GetPartnerRequest {
                        partner_id: alice(),
                    },
                    token,
                ))
                .await
                .map(drop),
            "ListPartners" => client
                .list_partners(request(ListPartnersRequest::default(), token))
                .await
                .map(drop),
            "UploadPartnerCertificate" => client
                .upload_partner_certificate(request(
                    UploadPartnerCertificateRequest {
                        partner_id: alice(),
                        certificate_data: "x".into(),
                        partner_domain: "FTM".into(),
                    },
                    token,
                ))
                .await
                .map(drop),
            "GetPartnerCertificate" => client
                .get_partner_certificate(request(
                    GetPartnerCertificateRequest {
                        partner_id: alice(),
                    },
                    token,
                ))
                .await
                .map(drop),
            "SetPartnerActive" => client
                .set_partner_active(request(
                    SetPartnerActiveRequest {
                        partner_id: alice(),
                        active: false,
                    },
                    token,
                ))
                .await
                .map(drop),
            other => panic!("unknown rpc {other}"),
        }
    }

    for rpc in [
        "GetPartner",
        "ListPartners",
        "UploadPartnerCertificate",
        "GetPartnerCertificate",
        "SetPartnerActive",
    ] {
        for (label, token) in [
            ("no token", None),
            ("bad signature", Some(foreign.as_str())),
            ("expired", Some(expired.as_str())),
        ] {
            let result = call(registry.client(), rpc, token).await;
            assert_eq!(
                result.as_ref().map_err(tonic::Status::code).err(),
                Some(Code::Unauthenticated),
                "{rpc} / {label}"
            );
            assert_error(result, Code::Unauthenticated, "KER-ATH-401");
        }
        // bob is neither alice nor an admin.
        let result = call(registry.client(), rpc, Some(&bob)).await;
        assert_error(result, Code::PermissionDenied, "KER-ATH-403");
    }
}

#[tokio::test]
async fn no_bootstrap_admin_without_a_configured_password() {
    let registry =
        Registry::start_with("sqlite", |settings| settings.admin.password = String::new()).await;
    let mut client = registry.client();
    for password in [TEST_ADMIN_PASSWORD, ""] {
        let login = client
            .login(LoginRequest {
                username: "admin".into(),
                password: password.into(),
            })
            .await;
        assert!(login.is_err(), "no admin account exists");
    }
    assert_error(
        client
            .login(LoginRequest {
                username: "admin".into(),
                password: TEST_ADMIN_PASSWORD.into(),
            })
            .await,
        Code::Unauthenticated,
        "KER-ATH-401",
    );
    registry.stop().await;
}
