//! `WatchFtmEvents` through a real in-process service, on SQLite and on PostgreSQL (when
//! `PMP_TEST_POSTGRES_URL` names a server): the snapshot then every review step, resuming,
//! no event for a refused step, and who may watch. What the writes record in the outbox:
//! `tests/storage.rs`; the shared follower's other behaviours (pruned versions, slow
//! clients, shutdown) are tested through the registry's stream
//! (`partner-registry/tests/events.rs`).

mod common;

use tonic::Code;

use common::fake_store::chip_certificate;
use common::{Options, Platform, org_of, request};
use pmp_common::db::testing::backends;
use pmp_common::testing::{assert_error, next_message, next_wanted};
use pmp_proto::ftm::v1 as proto;
use pmp_proto::ftm::v1::ftm_event::Event;

async fn watch(
    platform: &Platform,
    token: &str,
    from_version: i64,
) -> tonic::Streaming<proto::FtmEvent> {
    platform
        .client()
        .watch_ftm_events(request(
            proto::WatchFtmEventsRequest { from_version },
            Some(token),
        ))
        .await
        .expect("watching")
        .into_inner()
}

async fn next_change(stream: &mut tonic::Streaming<proto::FtmEvent>) -> proto::FtmEvent {
    next_wanted(stream, |message| {
        !matches!(message.event, Some(Event::Heartbeat(_)))
    })
    .await
}

/// Nothing more happened: the next message is a heartbeat at `version`.
async fn assert_idle(stream: &mut tonic::Streaming<proto::FtmEvent>, version: i64) {
    let idle = next_message(stream).await.expect("ok").expect("open");
    assert!(matches!(idle.event, Some(Event::Heartbeat(_))), "{idle:?}");
    assert_eq!(idle.version, version);
}

/// A new FTM of `acme` with `model` and its chip certificate uploaded (PENDING_APPROVAL).
async fn certified_ftm(platform: &Platform, acme: &str, model: &str) -> proto::Ftm {
    let created = platform
        .create(acme, "acme", "Chip", model)
        .await
        .expect("created");
    let chip = chip_certificate(model, &org_of("acme"));
    platform
        .upload(Some(acme), &created.ftm_id, &chip)
        .await
        .expect("uploaded")
}

#[tokio::test]
async fn a_watch_follows_the_review_of_ftms() {
    for backend in backends() {
        let platform = Platform::start_with(Options {
            backend,
            ..Options::default()
        })
        .await;
        let acme = platform.provider("acme").await;
        let admin = platform.admin_token().await;
        let waiting = platform
            .create(&acme, "acme", "Chip", "M0")
            .await
            .expect("created");

        let mut stream = watch(&platform, &admin, 0).await;
        let snapshot = next_change(&mut stream).await;
        assert_eq!(snapshot.version, 1, "{backend}");
        let Some(Event::Snapshot(part)) = snapshot.event else {
            panic!("{backend}: {snapshot:?}");
        };
        assert!(part.last);
        assert_eq!(part.ftms.len(), 1);
        assert_eq!(part.ftms[0].ftm_id, waiting.ftm_id);
        assert_eq!(part.ftms[0].partner_id, "acme");
        assert_eq!(part.ftms[0].model, "M0");
        assert_eq!(part.ftms[0].status(), proto::FtmStatus::PendingCertUpload);

        let first = certified_ftm(&platform, &acme, "M1").await;
        platform
            .approve(Some(&admin), &first.ftm_id)
            .await
            .expect("approved");
        platform
            .deactivate(Some(&acme), &first.ftm_id)
            .await
            .expect("deactivated");
        let second = certified_ftm(&platform, &acme, "M2").await;
        platform
            .reject(Some(&admin), &second.ftm_id, "wrong chip")
            .await
            .expect("rejected");

        let mut events = Vec::new();
        for _ in 0..7 {
            events.push(next_change(&mut stream).await);
        }
        let versions: Vec<i64> = events.iter().map(|event| event.version).collect();
        assert_eq!(versions, [2, 3, 4, 5, 6, 7, 8], "{backend}");
        let Some(Event::Created(proto::FtmCreated { ftm: Some(created) })) = &events[0].event
        else {
            panic!("{backend}: {:?}", events[0]);
        };
        assert_eq!(created.ftm_id, first.ftm_id);
        assert_eq!(created.model, "M1");
        assert_eq!(created.status(), proto::FtmStatus::PendingCertUpload);
        let uploaded = |ftm: &proto::Ftm| {
            Some(Event::CertificateUploaded(proto::FtmCertificateUploaded {
                ftm_id: ftm.ftm_id.clone(),
                certificate_id: ftm.certificate_id.clone(),
            }))
        };
        assert_eq!(events[1].event, uploaded(&first));
        assert_eq!(
            events[2].event,
            Some(Event::Approved(proto::FtmApproved {
                ftm_id: first.ftm_id.clone()
            }))
        );
        assert_eq!(
            events[3].event,
            Some(Event::Deactivated(proto::FtmDeactivated {
                ftm_id: first.ftm_id.clone()
            }))
        );
        assert!(matches!(events[4].event, Some(Event::Created(_))));
        assert_eq!(events[5].event, uploaded(&second));
        assert_eq!(
            events[6].event,
            Some(Event::Rejected(proto::FtmRejected {
                ftm_id: second.ftm_id.clone(),
                reason: "wrong chip".into(),
            }))
        );

        // Resuming after version 6: exactly 7 and 8.
        let mut resumed = watch(&platform, &admin, 6).await;
        assert_eq!(next_change(&mut resumed).await.version, 7, "{backend}");
        assert_eq!(next_change(&mut resumed).await.version, 8, "{backend}");
        assert_idle(&mut resumed, 8).await;
    }
}

#[tokio::test]
async fn a_refused_change_records_no_event() {
    let platform = Platform::start().await;
    let acme = platform.provider("acme").await;
    let admin = platform.admin_token().await;
    let created = platform
        .create(&acme, "acme", "Chip", "M1")
        .await
        .expect("created");
    // No certificate yet: refused, nothing written.
    assert_error(
        platform.approve(Some(&admin), &created.ftm_id).await,
        Code::FailedPrecondition,
        "PMP_AUT_033",
    );
    assert_error(
        platform.create(&acme, "acme", "chip", "m1").await,
        Code::AlreadyExists,
        "PMP_AUT_032",
    );
    let mut stream = watch(&platform, &admin, 0).await;
    let snapshot = next_change(&mut stream).await;
    assert_eq!(snapshot.version, 1, "only the creation");
    assert_idle(&mut stream, 1).await;
}

#[tokio::test]
async fn only_admins_and_platform_services_may_watch() {
    let platform = Platform::start().await;
    let acme = platform.provider("acme").await;
    let admin = platform.admin_token().await;
    let watch_as = |token: Option<String>, from_version: i64| {
        let message = proto::WatchFtmEventsRequest { from_version };
        let request = request(message, token.as_deref());
        let mut client = platform.client();
        async move { client.watch_ftm_events(request).await }
    };
    let refused = [
        (None, Code::Unauthenticated, "KER-ATH-401"),
        (
            Some("not-a-token".to_owned()),
            Code::Unauthenticated,
            "KER-ATH-401",
        ),
        (Some(acme), Code::PermissionDenied, "KER-ATH-403"),
        // A platform service not in the caller table for this RPC.
        (
            Some(platform.service_token("ftm-management")),
            Code::PermissionDenied,
            "KER-ATH-403",
        ),
    ];
    for (token, code, reason) in refused {
        assert_error(watch_as(token, 0).await, code, reason);
    }
    assert_error(
        watch_as(Some(admin.clone()), -5).await,
        Code::InvalidArgument,
        "PMS_COR_001",
    );
    let allowed = [
        admin,
        platform.service_token("partner-registry"),
        platform.service_token("certificate-store"),
    ];
    for token in allowed {
        let mut stream = watch_as(Some(token), 0)
            .await
            .expect("allowed")
            .into_inner();
        let snapshot = next_change(&mut stream).await;
        assert!(
            matches!(snapshot.event, Some(Event::Snapshot(_))),
            "{snapshot:?}"
        );
    }
}
