//! `WatchPartnerEvents` through a real in-process registry, on SQLite and on PostgreSQL
//! (when `PMP_TEST_POSTGRES_URL` names a server): snapshot then changes, resuming (from a
//! kept, a pruned or an unknown version), heartbeats, a client that never reads, shutdown,
//! and who may watch. What the writes record in the outbox: `tests/storage.rs`.

use tonic::Code;

use partner_registry::storage::{ImportedPartner, PartnerRepository, SqlPartnerRepository};
use partner_registry::testing::partner_record;
use pmp_common::db::testing::backends;
use pmp_common::event_feed::Outbox;
use pmp_common::testing::{assert_error, next_message, next_wanted, with_token};
use pmp_proto::partner::v1::partner_event::Event;
use pmp_proto::partner::v1::*;

mod support;

use support::{Registry, registration};

async fn watch(
    registry: &Registry,
    token: &str,
    from_version: i64,
) -> tonic::Streaming<PartnerEvent> {
    registry
        .client()
        .watch_partner_events(with_token(
            WatchPartnerEventsRequest { from_version },
            token,
        ))
        .await
        .expect("watching")
        .into_inner()
}

/// The next message that is not a heartbeat.
async fn next_change(stream: &mut tonic::Streaming<PartnerEvent>) -> PartnerEvent {
    next_wanted(stream, |message| {
        !matches!(message.event, Some(Event::Heartbeat(_)))
    })
    .await
}

/// Reads a whole snapshot (every part); answers its version and partners.
async fn snapshot(stream: &mut tonic::Streaming<PartnerEvent>) -> (i64, Vec<PartnerState>) {
    let mut partners = Vec::new();
    loop {
        let message = next_change(stream).await;
        let Some(Event::Snapshot(part)) = message.event else {
            panic!("expected a snapshot, got {message:?}");
        };
        partners.extend(part.partners);
        if part.last {
            return (message.version, partners);
        }
    }
}

async fn deactivate(registry: &Registry, admin: &str, partner_id: &str, active: bool) {
    registry
        .set_partner_active(admin, partner_id, active)
        .await
        .expect("status set");
}

#[tokio::test]
async fn a_watch_gets_a_snapshot_then_every_change_in_order() {
    for backend in backends() {
        let registry = Registry::start_with(backend, |_| {}).await;
        let admin = registry.admin_token().await;
        for id in ["acme", "beta"] {
            registry
                .register(registration(id))
                .await
                .expect("registered");
        }
        let mut stream = watch(&registry, &admin, 0).await;
        let (version, partners) = snapshot(&mut stream).await;
        assert_eq!(version, 2, "{backend}: two registrations so far");
        let ids: Vec<&str> = partners.iter().map(|p| p.partner_id.as_str()).collect();
        assert_eq!(ids, ["acme", "beta"], "{backend}");
        assert_eq!(partners[0].status(), PartnerStatus::InProgress);
        assert!(!partners[0].active);
        assert_eq!(partners[0].organization_name, "ACME Chips Ltd");
        assert_eq!(partners[0].partner_type, "FTM_Provider");

        registry
            .register(registration("gamma"))
            .await
            .expect("registered");
        deactivate(&registry, &admin, "acme", false).await;
        deactivate(&registry, &admin, "acme", true).await;

        let registered = next_change(&mut stream).await;
        assert_eq!(registered.version, 3, "{backend}");
        assert!(registered.time.is_some());
        let Some(Event::Registered(PartnerRegistered {
            partner: Some(gamma),
        })) = registered.event
        else {
            panic!("{backend}: {registered:?}");
        };
        assert_eq!(gamma.partner_id, "gamma");
        assert_eq!(gamma.status(), PartnerStatus::InProgress);

        let deactivated = next_change(&mut stream).await;
        assert_eq!(deactivated.version, 4, "{backend}");
        assert_eq!(
            deactivated.event,
            Some(Event::Deactivated(PartnerDeactivated {
                partner_id: "acme".into()
            }))
        );
        // Re-activated without a certificate: IN_PROGRESS again.
        let activated = next_change(&mut stream).await;
        assert_eq!(activated.version, 5, "{backend}");
        assert_eq!(
            activated.event,
            Some(Event::Activated(PartnerActivated {
                partner_id: "acme".into(),
                status: PartnerStatus::InProgress as i32,
            }))
        );
        // Nothing else: the next message is a heartbeat at the same version.
        let idle = next_message(&mut stream)
            .await
            .expect("status")
            .expect("open");
        assert!(matches!(idle.event, Some(Event::Heartbeat(_))), "{idle:?}");
        assert_eq!(idle.version, 5, "{backend}");
    }
}

#[tokio::test]
async fn resuming_gets_exactly_the_later_changes() {
    for backend in backends() {
        let registry = Registry::start_with(backend, |_| {}).await;
        let admin = registry.admin_token().await;
        for id in ["p1", "p2", "p3", "p4"] {
            registry
                .register(registration(id))
                .await
                .expect("registered");
        }
        let mut stream = watch(&registry, &admin, 2).await;
        for (version, id) in [(3, "p3"), (4, "p4")] {
            let message = next_change(&mut stream).await;
            assert_eq!(message.version, version, "{backend}");
            let Some(Event::Registered(registered)) = message.event else {
                panic!("{backend}: no snapshot when resuming from a kept version");
            };
            assert_eq!(registered.partner.expect("partner").partner_id, id);
        }
        registry
            .register(registration("p5"))
            .await
            .expect("registered");
        let live = next_change(&mut stream).await;
        assert_eq!(
            live.version, 5,
            "{backend}: nothing repeated, nothing skipped"
        );

        // Resuming from the current version: only what comes next.
        let mut caught_up = watch(&registry, &admin, 5).await;
        let first = next_message(&mut caught_up)
            .await
            .expect("ok")
            .expect("open");
        assert!(
            matches!(first.event, Some(Event::Heartbeat(_))),
            "{backend}: {first:?}"
        );
        assert_eq!(first.version, 5);
    }
}

#[tokio::test]
async fn resuming_from_a_pruned_or_unknown_version_gets_a_snapshot() {
    for backend in backends() {
        let registry = Registry::start_with(backend, |_| {}).await;
        let admin = registry.admin_token().await;
        for id in ["p1", "p2", "p3"] {
            registry
                .register(registration(id))
                .await
                .expect("registered");
        }
        let outbox = Outbox::new(registry.registry_database.connection.clone());
        assert_eq!(outbox.prune_through(2).await.expect("pruned"), 2);

        // Version 1's successor (2) is gone: a snapshot at version 3 replaces it.
        let mut stream = watch(&registry, &admin, 1).await;
        let (version, partners) = snapshot(&mut stream).await;
        assert_eq!(version, 3, "{backend}");
        assert_eq!(partners.len(), 3, "{backend}");
        registry
            .register(registration("p4"))
            .await
            .expect("registered");
        assert_eq!(next_change(&mut stream).await.version, 4, "{backend}");

        // Version 2 is still followable: 3 is kept.
        let mut kept = watch(&registry, &admin, 2).await;
        let next = next_change(&mut kept).await;
        assert_eq!(next.version, 3, "{backend}");
        assert!(matches!(next.event, Some(Event::Registered(_))));

        // A version this database never gave out (another database's, a restored backup).
        let mut unknown = watch(&registry, &admin, 999).await;
        let (version, partners) = snapshot(&mut unknown).await;
        assert_eq!((version, partners.len()), (4, 4), "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_blocks_nobody() {
    for backend in backends() {
        let registry = Registry::start_with(backend, |_| {}).await;
        let admin = registry.admin_token().await;
        // A snapshot far larger than the stream's buffer and the connection's flow-control
        // window: the silent client's stream task waits on it.
        let imported: Vec<ImportedPartner> = (0..3000)
            .map(|index| ImportedPartner {
                partner: partner_record(
                    &format!("bulk-{index:05}"),
                    &format!("b{index}@x.example"),
                ),
                password_hash: "unused".into(),
                roles: vec!["FTM_PROVIDER".into()],
            })
            .collect();
        SqlPartnerRepository::new(registry.registry_database.connection.clone())
            .import(&imported)
            .await
            .expect("imported");
        let silent = watch(&registry, &admin, 0).await;

        let mut reader = watch(&registry, &admin, 0).await;
        let (version, partners) = snapshot(&mut reader).await;
        assert_eq!((version, partners.len()), (0, 3000), "{backend}");
        for index in 0..10 {
            registry
                .register(registration(&format!("live-{index}")))
                .await
                .expect("registration is not held up by the silent client");
        }
        for index in 0..10 {
            assert_eq!(
                next_change(&mut reader).await.version,
                index + 1,
                "{backend}"
            );
        }
        // The silent client's stream was only waiting: read now, it has everything.
        let mut silent = silent;
        let (version, partners) = snapshot(&mut silent).await;
        assert_eq!((version, partners.len()), (0, 3000), "{backend}");
        for index in 0..10 {
            assert_eq!(
                next_change(&mut silent).await.version,
                index + 1,
                "{backend}"
            );
        }
    }
}

#[tokio::test]
async fn only_admins_and_platform_services_may_watch() {
    let registry = Registry::start().await;
    registry
        .register(registration("acme"))
        .await
        .expect("registered");
    let partner = registry.login("acme", "partner-password").await;
    let admin = registry.admin_token().await;
    let service = |name: &str| {
        registry
            .service_keys
            .signer(name)
            .token_for("partner-registry")
            .expect("service token")
    };
    let watch_as = |token: Option<String>, from_version: i64| {
        let message = WatchPartnerEventsRequest { from_version };
        let request = match &token {
            Some(token) => with_token(message, token),
            None => tonic::Request::new(message),
        };
        let mut client = registry.client();
        async move { client.watch_partner_events(request).await }
    };
    let refused = [
        (None, Code::Unauthenticated, "KER-ATH-401"),
        (
            Some("not-a-token".to_owned()),
            Code::Unauthenticated,
            "KER-ATH-401",
        ),
        (Some(partner), Code::PermissionDenied, "KER-ATH-403"),
        // A platform service not in the registry's caller table for this RPC.
        (
            Some(service("partner-registry")),
            Code::PermissionDenied,
            "KER-ATH-403",
        ),
    ];
    for (token, code, reason) in refused {
        assert_error(watch_as(token, 0).await, code, reason);
    }
    assert_error(
        watch_as(Some(admin.clone()), -1).await,
        Code::InvalidArgument,
        "PMS_COR_001",
    );
    for token in [
        admin,
        service("ftm-management"),
        service("certificate-store"),
    ] {
        let mut stream = watch_as(Some(token), 0)
            .await
            .expect("allowed")
            .into_inner();
        let (version, partners) = snapshot(&mut stream).await;
        assert_eq!((version, partners.len()), (1, 1));
    }
}

#[tokio::test]
async fn shutting_down_ends_streams_with_unavailable() {
    let registry = Registry::start().await;
    let admin = registry.admin_token().await;
    let mut stream = watch(&registry, &admin, 0).await;
    let (version, _) = snapshot(&mut stream).await;
    assert_eq!(version, 0);
    let stopping = tokio::spawn(registry.stop());
    let ended = loop {
        match next_message(&mut stream).await {
            Ok(Some(message)) if matches!(message.event, Some(Event::Heartbeat(_))) => {}
            other => break other,
        }
    };
    assert_error(ended, Code::Unavailable, "PMS_UNAVAILABLE");
    stopping.await.expect("stopped cleanly");
}
