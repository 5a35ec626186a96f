//! The FTM management API against a real in-process server, a real partner registry and the
//! certificate-store double: every RPC with its success path and error reasons (gRPC code
//! and ErrorInfo reason), the authentication/ownership matrix, the state machine, audit rows,
//! concurrency and start-up behaviour.

mod common;

use std::time::Duration;

use tonic::Code;

use common::fake_store::{self, chip_certificate};
use common::{Options, Platform, org_of, status_of};
use ftm_management::domain::FtmStatus;
use ftm_management::storage::FtmRepository;
use partner_registry::domain::PartnerStatus;
use pmp_common::testing::assert_error;
use pmp_proto::ftm::v1 as proto;

fn list_request() -> proto::ListFtmsRequest {
    proto::ListFtmsRequest::default()
}

#[tokio::test]
async fn create_ftm_normalises_stores_and_audits() {
    let platform = Platform::start().await;
    let acme = platform.provider("acme").await;
    let created = platform
        .create(&acme, "acme", "  Secure \t Element  ", " SE   3000 ")
        .await
        .expect("created");
    assert!(created.ftm_id.starts_with("ftm_"), "{}", created.ftm_id);
    assert_eq!(created.partner_id, "acme");
    assert_eq!(
        created.organization_name,
        org_of("acme"),
        "from the registry"
    );
    assert_eq!(created.make, "Secure Element");
    assert_eq!(created.model, "SE 3000");
    assert_eq!(status_of(&created), FtmStatus::PendingCertUpload);
    assert!(created.certificate_id.is_empty());
    assert!(created.certificate_expiry_time.is_none());
    assert!(created.create_time.is_some());
    assert_eq!(created.create_time, created.update_time);

    let fetched = platform
        .get(Some(&acme), &created.ftm_id)
        .await
        .expect("own FTM");
    assert_eq!(fetched, created);
    let other = platform
        .create(&acme, "acme", "Secure Element", "SE 3001")
        .await
        .expect("second");
    assert_ne!(other.ftm_id, created.ftm_id);

    let events = platform
        .repository
        .audit_events(&created.ftm_id)
        .await
        .expect("audit");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, "FTM_CREATED");
    assert_eq!(events[0].actor, "acme");
    assert_eq!(events[0].entity_id, created.ftm_id);
    assert_eq!(events[0].before_state, None);
    assert_eq!(
        events[0].after_state.as_deref(),
        Some("PENDING_CERT_UPLOAD")
    );
}

#[tokio::test]
async fn create_ftm_field_errors_are_pms_cor_001() {
    let platform = Platform::start().await;
    let acme = platform.provider("acme").await;
    for (partner_id, make, model) in [
        ("", "Chip", "M1"),
        ("   ", "Chip", "M1"),
        ("acme", "", "M1"),
        ("acme", " \t ", "M1"),
        ("acme", "Chip", ""),
        ("acme", &"x".repeat(37), "M1"),
        ("acme", "Chip", &"y".repeat(37)),
        (&"p".repeat(37), "Chip", "M1"),
    ] {
        assert_error(
            platform.create(&acme, partner_id, make, model).await,
            Code::InvalidArgument,
            "PMS_COR_001",
        );
    }
    let status = platform
        .create(&acme, "acme", "", "M1")
        .await
        .expect_err("blank make");
    let violations = tonic_types::StatusExt::get_details_bad_request(&status).expect("violations");
    assert_eq!(violations.field_violations[0].field, "make");
    // 36 characters once white space is collapsed is within the limit.
    let long = format!("{}     {}", "a".repeat(20), "b".repeat(15));
    let created = platform
        .create(&acme, "acme", &long, "M1")
        .await
        .expect("36 characters");
    assert_eq!(created.make.chars().count(), 36);
}

#[tokio::test]
async fn create_ftm_authorisation_matrix() {
    let platform = Platform::start().await;
    let acme = platform.provider("acme").await;
    let other = platform.provider("other").await;
    let admin = platform.admin_token().await;
    platform
        .register("devices", "Device_Provider", "Devices Ltd")
        .await;
    platform.activate("devices").await;
    let device_provider = platform.login("devices", common::PARTNER_PASSWORD).await;

    let anonymous = platform
        .client()
        .create_ftm(proto::CreateFtmRequest {
            partner_id: "acme".into(),
            make: "Chip".into(),
            model: "M1".into(),
        })
        .await;
    assert_error(anonymous, Code::Unauthenticated, "KER-ATH-401");
    assert_error(
        platform.create("not-a-token", "acme", "Chip", "M1").await,
        Code::Unauthenticated,
        "KER-ATH-401",
    );
    assert_error(
        platform.create(&other, "acme", "Chip", "M1").await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    // Owning the partner id is not enough without the FTM_PROVIDER role.
    assert_error(
        platform
            .create(&device_provider, "devices", "Chip", "M1")
            .await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    platform
        .create(&acme, "acme", "Chip", "M1")
        .await
        .expect("owner");
    let by_admin = platform
        .create(&admin, "acme", "Chip", "M2")
        .await
        .expect("admin for any provider");
    assert_eq!(by_admin.partner_id, "acme");
    let events = platform
        .repository
        .audit_events(&by_admin.ftm_id)
        .await
        .expect("audit");
    assert_eq!(events[0].actor, "admin");
}

#[tokio::test]
async fn create_ftm_needs_an_active_ftm_provider_partner() {
    let platform = Platform::start().await;
    let admin = platform.admin_token().await;
    // Missing partner.
    assert_error(
        platform.create(&admin, "ghost", "Chip", "M1").await,
        Code::FailedPrecondition,
        "PMP_AUT_030",
    );
    // Registered but IN_PROGRESS (no accepted partner certificate yet).
    platform
        .register("newbie", "FTM_Provider", "Newbie Ltd")
        .await;
    let newbie = platform.login("newbie", common::PARTNER_PASSWORD).await;
    assert_error(
        platform.create(&newbie, "newbie", "Chip", "M1").await,
        Code::FailedPrecondition,
        "PMP_AUT_030",
    );
    // Deactivated.
    let gone = platform.provider("gone").await;
    platform
        .set_partner_status("gone", PartnerStatus::Deactivated)
        .await;
    assert_error(
        platform.create(&gone, "gone", "Chip", "M1").await,
        Code::FailedPrecondition,
        "PMP_AUT_030",
    );
    // Active, but not an FTM provider.
    platform
        .register("devices", "Device_Provider", "Devices Ltd")
        .await;
    platform.activate("devices").await;
    assert_error(
        platform.create(&admin, "devices", "Chip", "M1").await,
        Code::FailedPrecondition,
        "PMP_AUT_030",
    );
    let listed = platform
        .list(Some(&admin), list_request())
        .await
        .expect("list");
    assert_eq!(listed.total_size, 0, "nothing was created");
}

#[tokio::test]
async fn duplicates_are_refused_ignoring_case_and_white_space() {
    let platform = Platform::start().await;
    let acme = platform.provider("acme").await;
    let other = platform.provider("other").await;
    platform
        .create(&acme, "acme", "Secure Element", "SE 1")
        .await
        .expect("first");
    for (make, model) in [
        ("Secure Element", "SE 1"),
        ("secure element", "se 1"),
        ("  SECURE   element ", "Se\t1"),
    ] {
        assert_error(
            platform.create(&acme, "acme", make, model).await,
            Code::AlreadyExists,
            "PMP_AUT_032",
        );
    }
    platform
        .create(&other, "other", "Secure Element", "SE 1")
        .await
        .expect("another partner may");
    // Rejected and deactivated FTMs do not block a new one.
    for status in [FtmStatus::Rejected, FtmStatus::Deactivated] {
        let old = platform
            .ftm_in_status("acme", &format!("Retired {}", status.as_str()), status)
            .await;
        platform
            .create(&acme, "acme", &old.make.to_uppercase(), &old.model)
            .await
            .expect("not blocked by a retired FTM");
    }
    for status in [FtmStatus::PendingApproval, FtmStatus::Approved] {
        let live = platform
            .ftm_in_status("acme", &format!("Live {}", status.as_str()), status)
            .await;
        assert_error(
            platform
                .create(&acme, "acme", &live.make, &live.model)
                .await,
            Code::AlreadyExists,
            "PMP_AUT_032",
        );
    }
}

#[tokio::test]
async fn concurrent_creates_of_one_make_and_model_create_exactly_one() {
    for backend in pmp_common::db::testing::backends() {
        let platform = Platform::start_with(Options {
            backend,
            ..Options::default()
        })
        .await;
        let acme = platform.provider("acme").await;
        let spellings = [
            "Acme Chip",
            "ACME CHIP",
            " acme  chip",
            "Acme\tChip ",
            "aCmE cHiP",
        ];
        let attempts = (0..20).map(|index| {
            let client = platform.client();
            let token = acme.clone();
            let make = spellings[index % spellings.len()].to_owned();
            tokio::spawn(async move {
                let mut client = client;
                client
                    .create_ftm(pmp_common::testing::with_token(
                        proto::CreateFtmRequest {
                            partner_id: "acme".into(),
                            make,
                            model: if index % 2 == 0 {
                                "M 1".into()
                            } else {
                                "m  1".into()
                            },
                        },
                        &token,
                    ))
                    .await
            })
        });
        let mut successes = 0;
        for result in futures::future::join_all(attempts).await {
            match result.expect("task") {
                Ok(_) => successes += 1,
                Err(status) => {
                    assert_error(Err::<(), _>(status), Code::AlreadyExists, "PMP_AUT_032")
                }
            }
        }
        assert_eq!(successes, 1, "{backend}");
        let listed = platform
            .list(Some(&acme), list_request())
            .await
            .expect("list");
        assert_eq!(listed.total_size, 1, "{backend}: one row stored");
    }
}

#[tokio::test]
async fn get_ftm_owner_or_admin() {
    let platform = Platform::start().await;
    let acme = platform.provider("acme").await;
    let other = platform.provider("other").await;
    let admin = platform.admin_token().await;
    let ftm = platform
        .create(&acme, "acme", "Chip", "M1")
        .await
        .expect("created");
    assert!(platform.get(Some(&acme), &ftm.ftm_id).await.is_ok());
    assert!(platform.get(Some(&admin), &ftm.ftm_id).await.is_ok());
    assert_error(
        platform.get(Some(&other), &ftm.ftm_id).await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    assert_error(
        platform.get(None, &ftm.ftm_id).await,
        Code::Unauthenticated,
        "KER-ATH-401",
    );
    for token in [&acme, &other, &admin] {
        assert_error(
            platform.get(Some(token), "ftm_unknown").await,
            Code::NotFound,
            "PMP_AUT_031",
        );
    }
    assert_error(
        platform.get(Some(&admin), " ").await,
        Code::InvalidArgument,
        "PMS_COR_001",
    );
}

#[tokio::test]
async fn list_ftms_scopes_filters_orders_and_pages() {
    let platform = Platform::start().await;
    let acme = platform.provider("acme").await;
    let other = platform.provider("other").await;
    let admin = platform.admin_token().await;
    for index in 0..7 {
        platform
            .create(
                &acme,
                "acme",
                &format!("Acme Make {}", index % 2),
                &format!("A{index}"),
            )
            .await
            .expect("acme FTM");
    }
    for index in 0..3 {
        platform
            .create(&other, "other", "Other Make", &format!("O{index}"))
            .await
            .expect("other FTM");
    }

    // Admins see all, providers their own.
    let all = platform
        .list(Some(&admin), list_request())
        .await
        .expect("all");
    assert_eq!(all.total_size, 10);
    assert_eq!(all.ftms.len(), 10);
    assert!(all.next_page_token.is_empty());
    let own = platform
        .list(Some(&acme), list_request())
        .await
        .expect("own");
    assert_eq!(own.total_size, 7);
    assert!(own.ftms.iter().all(|ftm| ftm.partner_id == "acme"));
    let explicit = proto::ListFtmsRequest {
        partner_id: "acme".into(),
        ..list_request()
    };
    assert_eq!(
        platform
            .list(Some(&acme), explicit.clone())
            .await
            .expect("own")
            .total_size,
        7
    );
    assert_eq!(
        platform
            .list(Some(&admin), explicit)
            .await
            .expect("admin filter")
            .total_size,
        7
    );
    let foreign = proto::ListFtmsRequest {
        partner_id: "other".into(),
        ..list_request()
    };
    assert_error(
        platform.list(Some(&acme), foreign).await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    assert_error(
        platform.list(None, list_request()).await,
        Code::Unauthenticated,
        "KER-ATH-401",
    );

    // Case-insensitive substring filters and status.
    let by_make = proto::ListFtmsRequest {
        make: "MAKE 1".into(),
        ..list_request()
    };
    assert_eq!(
        platform
            .list(Some(&admin), by_make)
            .await
            .expect("make")
            .total_size,
        3
    );
    let by_org = proto::ListFtmsRequest {
        organization_name: "other chips".into(),
        model: "o".into(),
        ..list_request()
    };
    assert_eq!(
        platform
            .list(Some(&admin), by_org)
            .await
            .expect("org")
            .total_size,
        3
    );
    let by_status = proto::ListFtmsRequest {
        status: proto::FtmStatus::Approved as i32,
        ..list_request()
    };
    assert_eq!(
        platform
            .list(Some(&admin), by_status)
            .await
            .expect("status")
            .total_size,
        0
    );

    // Pages in the requested order, with tokens bound to the query.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = platform
            .list(
                Some(&admin),
                proto::ListFtmsRequest {
                    page_size: 3,
                    page_token: token.clone(),
                    order_by: "model desc".into(),
                    ..list_request()
                },
            )
            .await
            .expect("page");
        assert_eq!(page.total_size, 10);
        assert!(page.ftms.len() <= 3);
        seen.extend(page.ftms.into_iter().map(|ftm| ftm.model));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut expected: Vec<String> = (0..7)
        .map(|i| format!("A{i}"))
        .chain((0..3).map(|i| format!("O{i}")))
        .collect();
    expected.sort_by_key(|model| model.to_lowercase());
    expected.reverse();
    assert_eq!(seen, expected);

    let first = platform
        .list(
            Some(&admin),
            proto::ListFtmsRequest {
                page_size: 2,
                ..list_request()
            },
        )
        .await
        .expect("first page");
    assert_eq!(first.ftms.len(), 2);
    assert!(!first.next_page_token.is_empty());
    // The token of one query does not fit another (other filter, order or scope).
    for reused in [
        proto::ListFtmsRequest {
            page_token: first.next_page_token.clone(),
            make: "acme".into(),
            ..list_request()
        },
        proto::ListFtmsRequest {
            page_token: first.next_page_token.clone(),
            order_by: "make".into(),
            ..list_request()
        },
    ] {
        assert_error(
            platform.list(Some(&admin), reused).await,
            Code::InvalidArgument,
            "PMS_PRT_362",
        );
    }
    let other_scope = proto::ListFtmsRequest {
        page_token: first.next_page_token.clone(),
        ..list_request()
    };
    assert_error(
        platform.list(Some(&acme), other_scope).await,
        Code::InvalidArgument,
        "PMS_PRT_362",
    );
    let mut tampered = first.next_page_token.clone();
    let last = tampered.pop().expect("non-empty");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for token in [tampered, "bm90LWEtdG9rZW4".to_owned(), "%%%".to_owned()] {
        assert_error(
            platform
                .list(
                    Some(&admin),
                    proto::ListFtmsRequest {
                        page_token: token,
                        ..list_request()
                    },
                )
                .await,
            Code::InvalidArgument,
            "PMS_PRT_362",
        );
    }
    // The same query with the token continues where the first page stopped.
    let second = platform
        .list(
            Some(&admin),
            proto::ListFtmsRequest {
                page_size: 2,
                page_token: first.next_page_token,
                ..list_request()
            },
        )
        .await
        .expect("second page");
    assert_eq!(second.ftms.len(), 2);
    assert!(second.ftms.iter().all(|ftm| !first.ftms.contains(ftm)));

    for order_by in ["ftm_id", "make sideways", "organization_name"] {
        assert_error(
            platform
                .list(
                    Some(&admin),
                    proto::ListFtmsRequest {
                        order_by: order_by.into(),
                        ..list_request()
                    },
                )
                .await,
            Code::InvalidArgument,
            "PMS_PRT_357",
        );
    }
    assert_error(
        platform
            .list(
                Some(&admin),
                proto::ListFtmsRequest {
                    page_size: -1,
                    ..list_request()
                },
            )
            .await,
        Code::InvalidArgument,
        "PMS_PRT_361",
    );
    assert_error(
        platform
            .list(
                Some(&admin),
                proto::ListFtmsRequest {
                    status: 42,
                    ..list_request()
                },
            )
            .await,
        Code::InvalidArgument,
        "PMS_COR_001",
    );
    let huge = platform
        .list(
            Some(&admin),
            proto::ListFtmsRequest {
                page_size: 100_000,
                ..list_request()
            },
        )
        .await
        .expect("coerced to the maximum");
    assert_eq!(huge.ftms.len(), 10);
}

#[tokio::test]
async fn upload_certificate_goes_to_the_store_and_awaits_approval() {
    let platform = Platform::start().await;
    let acme = platform.provider("acme").await;
    let ftm = platform
        .create(&acme, "acme", "Chip", "M1")
        .await
        .expect("created");
    let certificate = chip_certificate("one", &org_of("acme"));
    let uploaded = platform
        .upload(Some(&acme), &ftm.ftm_id, &certificate)
        .await
        .expect("uploaded");
    assert_eq!(status_of(&uploaded), FtmStatus::PendingApproval);
    assert!(!uploaded.certificate_id.is_empty());
    assert!(uploaded.certificate_expiry_time.is_some());
    let seconds = |time: &Option<prost_types::Timestamp>| {
        let time = time.as_ref().expect("time");
        (time.seconds, time.nanos)
    };
    assert!(seconds(&uploaded.update_time) >= seconds(&uploaded.create_time));

    let stored = platform
        .store()
        .certificate(&uploaded.certificate_id)
        .expect("in the store");
    assert_eq!(stored.owner_id, ftm.ftm_id);
    assert_eq!(stored.partner_domain, "FTM");
    assert_eq!(
        stored.organization_name,
        org_of("acme"),
        "the registry's organisation"
    );
    assert_eq!(
        stored.owner_type,
        pmp_proto::certstore::v1::OwnerType::Ftm as i32
    );
    assert_eq!(stored.partner_id, "acme", "linked to the provider partner");
    assert!(!stored.trusted, "not trusted before approval");

    // The call carried a service token, the user's token, and a deadline.
    let call = platform
        .store()
        .calls(fake_store::UPLOAD)
        .pop()
        .expect("call");
    let authorization = call.authorization.expect("authorization");
    assert!(authorization.starts_with("Bearer "));
    assert_ne!(
        authorization,
        format!("Bearer {acme}"),
        "a service token, not the user's"
    );
    assert_eq!(call.forwarded_user.as_deref(), Some(acme.as_str()));
    assert!(call.timeout.is_some(), "deadline propagated");

    assert_eq!(
        platform.audit_actions(&ftm.ftm_id).await,
        ["FTM_CREATED", "FTM_CERTIFICATE_UPLOADED"]
    );
    let events = platform
        .repository
        .audit_events(&ftm.ftm_id)
        .await
        .expect("audit");
    assert_eq!(
        events[1].before_state.as_deref(),
        Some("PENDING_CERT_UPLOAD")
    );
    assert_eq!(events[1].after_state.as_deref(), Some("PENDING_APPROVAL"));
    assert_eq!(events[1].actor, "acme");
}

#[tokio::test]
async fn upload_certificate_errors_have_their_reasons() {
    let mut platform = Platform::start().await;
    let acme = platform.provider("acme").await;
    let other = platform.provider("other").await;
    let admin = platform.admin_token().await;
    let ftm = platform
        .create(&acme, "acme", "Chip", "M1")
        .await
        .expect("created");
    let good = chip_certificate("one", &org_of("acme"));

    assert_error(
        platform.upload(None, &ftm.ftm_id, &good).await,
        Code::Unauthenticated,
        "KER-ATH-401",
    );
    assert_error(
        platform.upload(Some(&other), &ftm.ftm_id, &good).await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    assert_error(
        platform.upload(Some(&acme), "", &good).await,
        Code::InvalidArgument,
        "PMS_COR_001",
    );
    assert_error(
        platform.upload(Some(&acme), &ftm.ftm_id, "  ").await,
        Code::InvalidArgument,
        "PMS_COR_001",
    );
    assert_error(
        platform.upload(Some(&acme), "ftm_unknown", &good).await,
        Code::NotFound,
        "PMP_AUT_031",
    );
    // The store's reasons reach the caller unchanged.
    assert_error(
        platform
            .upload(Some(&acme), &ftm.ftm_id, "not-a-certificate")
            .await,
        Code::InvalidArgument,
        "KER-KMS-013",
    );
    assert_error(
        platform
            .upload(
                Some(&acme),
                &ftm.ftm_id,
                &chip_certificate("no-chain", &org_of("acme")),
            )
            .await,
        Code::FailedPrecondition,
        "KER-PCM-006",
    );
    // The organisation is the registry's, not the certificate's.
    assert_error(
        platform
            .upload(
                Some(&acme),
                &ftm.ftm_id,
                &chip_certificate("one", "Someone Else"),
            )
            .await,
        Code::InvalidArgument,
        "KER-PCM-008",
    );
    let unchanged = platform.get(Some(&acme), &ftm.ftm_id).await.expect("get");
    assert_eq!(status_of(&unchanged), FtmStatus::PendingCertUpload);
    assert_eq!(platform.audit_actions(&ftm.ftm_id).await, ["FTM_CREATED"]);
    assert_eq!(
        platform
            .repository
            .sync_marker(&ftm.ftm_id)
            .await
            .expect("marker"),
        None,
        "refused uploads leave no marker"
    );
    // A deactivated provider cannot upload.
    platform
        .set_partner_status("acme", PartnerStatus::Deactivated)
        .await;
    assert_error(
        platform.upload(Some(&admin), &ftm.ftm_id, &good).await,
        Code::FailedPrecondition,
        "PMP_AUT_030",
    );
    platform
        .set_partner_status("acme", PartnerStatus::Active)
        .await;
    platform
        .upload(Some(&admin), &ftm.ftm_id, &good)
        .await
        .expect("admin may upload");
    // The registry being down is UNAVAILABLE.
    let second = platform
        .create(&acme, "acme", "Chip", "M2")
        .await
        .expect("second");
    platform.stop_registry().await;
    let down = platform
        .upload(Some(&acme), &second.ftm_id, &good)
        .await
        .expect_err("registry down");
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");
    assert_error(
        platform.create(&acme, "acme", "Chip", "M3").await,
        Code::Unavailable,
        "PMS_UNAVAILABLE",
    );
    let unchanged = platform.stored(&second.ftm_id).await;
    assert_eq!(unchanged.status, FtmStatus::PendingCertUpload);
}

#[tokio::test]
async fn approve_reject_and_deactivate_with_their_roles() {
    let platform = Platform::start().await;
    let acme = platform.provider("acme").await;
    let other = platform.provider("other").await;
    let admin = platform.admin_token().await;
    let approved = platform
        .create(&acme, "acme", "Chip", "M1")
        .await
        .expect("created");
    let rejected = platform
        .create(&acme, "acme", "Chip", "M2")
        .await
        .expect("created");
    for (index, ftm) in [&approved, &rejected].into_iter().enumerate() {
        platform
            .upload(
                Some(&acme),
                &ftm.ftm_id,
                &chip_certificate(&format!("c{index}"), &org_of("acme")),
            )
            .await
            .expect("uploaded");
    }

    // Approve: admins only.
    assert_error(
        platform.approve(None, &approved.ftm_id).await,
        Code::Unauthenticated,
        "KER-ATH-401",
    );
    assert_error(
        platform.approve(Some(&acme), &approved.ftm_id).await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    assert_error(
        platform.approve(Some(&other), &approved.ftm_id).await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    assert_error(
        platform.approve(Some(&admin), "ftm_unknown").await,
        Code::NotFound,
        "PMP_AUT_031",
    );
    assert_error(
        platform.approve(Some(&admin), "").await,
        Code::InvalidArgument,
        "PMS_COR_001",
    );
    let done = platform
        .approve(Some(&admin), &approved.ftm_id)
        .await
        .expect("approved");
    assert_eq!(status_of(&done), FtmStatus::Approved);
    assert_eq!(platform.store().trusted(&done.certificate_id), Some(true));
    // A second approval (e.g. a retry after a lost reply) is refused; the state is right.
    assert_error(
        platform.approve(Some(&admin), &approved.ftm_id).await,
        Code::FailedPrecondition,
        "PMS_FTM_ERROR_012",
    );

    // Reject: admins only, with a reason.
    assert_error(
        platform.reject(Some(&acme), &rejected.ftm_id, "bad").await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    assert_error(
        platform.reject(Some(&other), &rejected.ftm_id, "bad").await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    assert_error(
        platform.reject(Some(&admin), "ftm_unknown", "bad").await,
        Code::NotFound,
        "PMP_AUT_031",
    );
    assert_error(
        platform.reject(Some(&admin), "", "bad").await,
        Code::InvalidArgument,
        "PMS_COR_001",
    );
    assert_error(
        platform.reject(None, &rejected.ftm_id, "bad").await,
        Code::Unauthenticated,
        "KER-ATH-401",
    );
    assert_error(
        platform.reject(Some(&admin), &rejected.ftm_id, " ").await,
        Code::InvalidArgument,
        "PMS_COR_001",
    );
    assert_error(
        platform
            .reject(Some(&admin), &rejected.ftm_id, &"r".repeat(513))
            .await,
        Code::InvalidArgument,
        "PMS_COR_001",
    );
    let refused = platform
        .reject(
            Some(&admin),
            &rejected.ftm_id,
            "  chip fails the side-channel tests ",
        )
        .await
        .expect("rejected");
    assert_eq!(status_of(&refused), FtmStatus::Rejected);
    assert_eq!(refused.reject_reason, "chip fails the side-channel tests");
    assert_eq!(
        platform.store().trusted(&refused.certificate_id),
        Some(false)
    );

    // Deactivate: owner or admin.
    assert_error(
        platform.deactivate(Some(&other), &approved.ftm_id).await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    assert_error(
        platform.deactivate(None, &approved.ftm_id).await,
        Code::Unauthenticated,
        "KER-ATH-401",
    );
    assert_error(
        platform.deactivate(Some(&acme), " ").await,
        Code::InvalidArgument,
        "PMS_COR_001",
    );
    assert_error(
        platform.deactivate(Some(&acme), "ftm_unknown").await,
        Code::NotFound,
        "PMP_AUT_031",
    );
    let deactivated = platform
        .deactivate(Some(&acme), &approved.ftm_id)
        .await
        .expect("owner deactivates");
    assert_eq!(status_of(&deactivated), FtmStatus::Deactivated);
    assert_eq!(
        platform.store().trusted(&deactivated.certificate_id),
        Some(false)
    );
    assert_error(
        platform.deactivate(Some(&admin), &approved.ftm_id).await,
        Code::FailedPrecondition,
        "PMS_FTM_ERROR_007",
    );
    let admin_deactivates = platform
        .ftm_in_status("other", "Other Chip", FtmStatus::Approved)
        .await;
    platform
        .deactivate(Some(&admin), &admin_deactivates.ftm_id)
        .await
        .expect("admin deactivates");

    let events = platform
        .repository
        .audit_events(&approved.ftm_id)
        .await
        .expect("audit");
    let actions: Vec<_> = events.iter().map(|event| event.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "FTM_CREATED",
            "FTM_CERTIFICATE_UPLOADED",
            "FTM_APPROVED",
            "FTM_DEACTIVATED"
        ]
    );
    assert_eq!(events[2].actor, "admin");
    assert_eq!(events[2].before_state.as_deref(), Some("PENDING_APPROVAL"));
    assert_eq!(events[2].after_state.as_deref(), Some("APPROVED"));
    assert_eq!(events[3].actor, "acme");
    assert_eq!(events[3].after_state.as_deref(), Some("DEACTIVATED"));
    assert_eq!(
        platform.audit_actions(&rejected.ftm_id).await,
        ["FTM_CREATED", "FTM_CERTIFICATE_UPLOADED", "FTM_REJECTED"]
    );
    platform.assert_trust_matches_status().await;
}

#[tokio::test]
async fn renewing_an_approved_ftm_needs_approval_again() {
    let platform = Platform::start().await;
    let acme = platform.provider("acme").await;
    let admin = platform.admin_token().await;
    let ftm = platform
        .create(&acme, "acme", "Chip", "M1")
        .await
        .expect("created");
    let first = platform
        .upload(
            Some(&acme),
            &ftm.ftm_id,
            &chip_certificate("first", &org_of("acme")),
        )
        .await
        .expect("uploaded");
    platform
        .approve(Some(&admin), &ftm.ftm_id)
        .await
        .expect("approved");
    assert_eq!(platform.store().trusted(&first.certificate_id), Some(true));

    let renewed = platform
        .upload(
            Some(&acme),
            &ftm.ftm_id,
            &chip_certificate("second", &org_of("acme")),
        )
        .await
        .expect("renewed");
    assert_eq!(status_of(&renewed), FtmStatus::PendingApproval);
    assert_ne!(renewed.certificate_id, first.certificate_id);
    assert_eq!(
        platform.store().trusted(&first.certificate_id),
        Some(false),
        "old certificate untrusted"
    );
    assert_eq!(
        platform.store().trusted(&renewed.certificate_id),
        Some(false),
        "new one not yet trusted"
    );
    platform.assert_trust_matches_status().await;
    platform
        .approve(Some(&admin), &ftm.ftm_id)
        .await
        .expect("approved again");
    assert_eq!(
        platform.store().trusted(&renewed.certificate_id),
        Some(true)
    );
    assert_eq!(platform.store().trusted(&first.certificate_id), Some(false));
    platform.assert_trust_matches_status().await;
}

#[tokio::test]
async fn every_status_and_action_follows_the_state_machine() {
    let platform = Platform::start().await;
    let acme = platform.provider("acme").await;
    let admin = platform.admin_token().await;
    use FtmStatus::*;
    // Expected outcome per (status, [upload, approve, reject, deactivate]).
    let table: [(FtmStatus, [Result<FtmStatus, &str>; 4]); 5] = [
        (
            PendingCertUpload,
            [
                Ok(PendingApproval),
                Err("PMP_AUT_033"),
                Err("PMS_FTM_ERROR_012"),
                Err("PMS_FTM_ERROR_010"),
            ],
        ),
        (
            PendingApproval,
            [
                Err("PMP_AUT_038"),
                Ok(Approved),
                Ok(Rejected),
                Err("PMS_FTM_ERROR_010"),
            ],
        ),
        (
            Approved,
            [
                Ok(PendingApproval),
                Err("PMS_FTM_ERROR_012"),
                Err("PMS_FTM_ERROR_012"),
                Ok(Deactivated),
            ],
        ),
        (
            Rejected,
            [
                Err("PMP_AUT_038"),
                Err("PMS_FTM_ERROR_012"),
                Err("PMS_FTM_ERROR_012"),
                Err("PMS_FTM_ERROR_010"),
            ],
        ),
        (
            Deactivated,
            [
                Err("PMP_AUT_039"),
                Err("PMP_AUT_039"),
                Err("PMS_FTM_ERROR_012"),
                Err("PMS_FTM_ERROR_007"),
            ],
        ),
    ];
    for (row, (status, outcomes)) in table.into_iter().enumerate() {
        for (column, outcome) in outcomes.into_iter().enumerate() {
            let ftm = platform
                .ftm_in_status("acme", &format!("Chip {row}-{column}"), status)
                .await;
            let result = match column {
                0 => {
                    platform
                        .upload(
                            Some(&acme),
                            &ftm.ftm_id,
                            &chip_certificate(&ftm.ftm_id, &org_of("acme")),
                        )
                        .await
                }
                1 => platform.approve(Some(&admin), &ftm.ftm_id).await,
                2 => platform.reject(Some(&admin), &ftm.ftm_id, "no").await,
                _ => platform.deactivate(Some(&acme), &ftm.ftm_id).await,
            };
            let action = ["upload", "approve", "reject", "deactivate"][column];
            match outcome {
                Ok(target) => {
                    let changed =
                        result.unwrap_or_else(|error| panic!("{status:?} × {action}: {error:?}"));
                    assert_eq!(status_of(&changed), target, "{status:?} × {action}");
                    assert_eq!(
                        platform.audit_actions(&ftm.ftm_id).await.len(),
                        1,
                        "{status:?} × {action}: audited"
                    );
                }
                Err(reason) => {
                    let code = if reason == "PMS_COR_001" {
                        Code::InvalidArgument
                    } else {
                        Code::FailedPrecondition
                    };
                    assert_error(result, code, reason);
                    assert_eq!(
                        platform.stored(&ftm.ftm_id).await.status,
                        status,
                        "{status:?} × {action}: unchanged"
                    );
                    assert!(
                        platform.audit_actions(&ftm.ftm_id).await.is_empty(),
                        "{status:?} × {action}: no audit row"
                    );
                }
            }
            assert_eq!(
                platform
                    .repository
                    .sync_marker(&ftm.ftm_id)
                    .await
                    .expect("marker"),
                None,
                "{status:?} × {action}"
            );
        }
    }
    platform.assert_trust_matches_status().await;
}

#[tokio::test]
async fn get_ftm_certificate_owner_or_admin() {
    let platform = Platform::start().await;
    let acme = platform.provider("acme").await;
    let other = platform.provider("other").await;
    let admin = platform.admin_token().await;
    let ftm = platform
        .create(&acme, "acme", "Chip", "M1")
        .await
        .expect("created");
    assert_error(
        platform.certificate(Some(&acme), &ftm.ftm_id).await,
        Code::FailedPrecondition,
        "PMP_AUT_033",
    );
    let certificate = chip_certificate("one", &org_of("acme"));
    let uploaded = platform
        .upload(Some(&acme), &ftm.ftm_id, &certificate)
        .await
        .expect("uploaded");
    for token in [&acme, &admin] {
        let bundle = platform
            .certificate(Some(token), &ftm.ftm_id)
            .await
            .expect("bundle");
        assert_eq!(bundle.certificate_id, uploaded.certificate_id);
        assert_eq!(bundle.ca_signed_certificate_pem, certificate);
        assert!(!bundle.platform_signed_certificate_pem.is_empty());
    }
    assert_error(
        platform.certificate(Some(&other), &ftm.ftm_id).await,
        Code::PermissionDenied,
        "KER-ATH-403",
    );
    assert_error(
        platform.certificate(None, &ftm.ftm_id).await,
        Code::Unauthenticated,
        "KER-ATH-401",
    );
    assert_error(
        platform.certificate(Some(&admin), "ftm_unknown").await,
        Code::NotFound,
        "PMP_AUT_031",
    );
    assert_error(
        platform.certificate(Some(&admin), "").await,
        Code::InvalidArgument,
        "PMS_COR_001",
    );
    // The store's own reason is relayed.
    let orphan = platform
        .ftm_in_status("acme", "Orphan", FtmStatus::Approved)
        .await;
    let mut store_less = orphan.clone();
    store_less.ftm_id = ftm_management::domain::new_ftm_id();
    store_less.make = "Orphan 2".into();
    store_less.certificate_id = Some("cert-the-store-never-saw".into());
    platform
        .repository
        .import(&[store_less.clone()])
        .await
        .expect("imported");
    assert_error(
        platform.certificate(Some(&admin), &store_less.ftm_id).await,
        Code::NotFound,
        "KER-PCM-012",
    );
}

#[tokio::test]
async fn concurrent_steps_on_one_ftm_let_exactly_one_win() {
    let platform = Platform::start().await;
    let acme = platform.provider("acme").await;
    let admin = platform.admin_token().await;
    let ftm = platform
        .create(&acme, "acme", "Chip", "M1")
        .await
        .expect("created");
    // Uploads of different certificates: one wins, the others see PENDING_APPROVAL.
    let uploads = (0..6).map(|index| {
        let platform = &platform;
        let acme = acme.clone();
        let ftm_id = ftm.ftm_id.clone();
        async move {
            platform
                .upload(
                    Some(&acme),
                    &ftm_id,
                    &chip_certificate(&format!("race-{index}"), &org_of("acme")),
                )
                .await
        }
    });
    let results = futures::future::join_all(uploads).await;
    let winners: Vec<_> = results.iter().filter(|result| result.is_ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for result in results.into_iter().filter(Result::is_err) {
        assert_error(result, Code::FailedPrecondition, "PMP_AUT_038");
    }
    // Approvals and a rejection racing: exactly one decision.
    let decisions = (0..6).map(|index| {
        let platform = &platform;
        let admin = admin.clone();
        let ftm_id = ftm.ftm_id.clone();
        async move {
            if index == 0 {
                platform.reject(Some(&admin), &ftm_id, "race").await
            } else {
                platform.approve(Some(&admin), &ftm_id).await
            }
        }
    });
    let results = futures::future::join_all(decisions).await;
    assert_eq!(
        results.iter().filter(|result| result.is_ok()).count(),
        1,
        "{results:?}"
    );
    for result in results.into_iter().filter(Result::is_err) {
        assert_error(result, Code::FailedPrecondition, "PMS_FTM_ERROR_012");
    }
    assert_eq!(platform.audit_actions(&ftm.ftm_id).await.len(), 3);
    platform.assert_trust_matches_status().await;
}

#[tokio::test]
async fn health_waits_for_the_registry_keys_and_reflection_lists_the_service() {
    use pmp_common::testing::{health_status, reflection_services, wait_until_serving};
    use pmp_proto::service_names::FTM_MANAGEMENT;
    use tonic_health::pb::health_check_response::ServingStatus;

    let directory = tempfile::tempdir().expect("tempdir");
    let secret =
        pmp_common::auth::testing::ServiceKeyFiles::generate(&directory.path().join("identities"))
            .expect("service keys");
    // The registry's address is bound from the start and handed to the registry later; until
    // then nobody answers on it.
    let registry_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let registry_address = format!(
        "http://{}",
        registry_listener.local_addr().expect("address")
    );
    let database = pmp_common::db::testing::TestDatabase::sqlite()
        .await
        .expect("database");
    let settings = ftm_management::testing::settings(
        database.settings.clone(),
        &registry_address,
        common::UNREACHABLE,
        &secret,
    )
    .expect("settings");
    let ftm = ftm_management::testing::spawn(settings)
        .await
        .expect("spawn");
    let channel = loop {
        if let Ok(channel) = ftm.channel().await {
            break channel;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The service has asked the registry for the token keys (and gets no answer).
    let (attempt, _) = tokio::time::timeout(Duration::from_secs(30), registry_listener.accept())
        .await
        .expect("the service fetches the token keys")
        .expect("accept");
    drop(attempt);
    assert_eq!(
        health_status(channel.clone(), FTM_MANAGEMENT)
            .await
            .expect("health"),
        ServingStatus::NotServing,
        "no token keys yet"
    );
    assert_eq!(
        health_status(channel.clone(), "").await.expect("health"),
        ServingStatus::NotServing
    );
    let early =
        pmp_proto::ftm::v1::ftm_management_client::FtmManagementClient::new(channel.clone())
            .get_ftm(proto::GetFtmRequest { ftm_id: "x".into() })
            .await;
    assert_eq!(early.expect_err("not ready").code(), Code::Unavailable);

    // The registry comes up on the address the service waits for.
    let registry_database = pmp_common::db::testing::TestDatabase::sqlite()
        .await
        .expect("database");
    let registry_settings = partner_registry::testing::settings(
        directory.path(),
        registry_database.settings.clone(),
        common::UNREACHABLE,
        &secret,
    )
    .expect("settings");
    let registry = partner_registry::testing::spawn_on(registry_settings, registry_listener)
        .expect("registry");
    wait_until_serving(&ftm.address, FTM_MANAGEMENT, Duration::from_secs(30))
        .await
        .expect("serving once the keys are loaded");
    let services = reflection_services(channel).await.expect("reflection");
    assert!(
        services.contains(&FTM_MANAGEMENT.to_owned()),
        "{services:?}"
    );
    assert!(
        services.contains(&"grpc.health.v1.Health".to_owned()),
        "{services:?}"
    );
    ftm.stop().await.expect("clean stop");
    registry.stop().await.expect("registry stopped cleanly");
}
