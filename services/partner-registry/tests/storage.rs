//! The registry's repository, run once on SQLite and once on PostgreSQL (when
//! `PMP_TEST_POSTGRES_URL` names a server): same test functions on both backends.

use chrono::{SubsecRound, Utc};
use pmp_common::lease::LeaseStore;
use sea_orm_migration::MigratorTrait;

use partner_registry::domain::{
    AuditEvent, Partner, PartnerEvent, PartnerFilter, PartnerState, PartnerStatus,
};
use partner_registry::error::RegistryError;
use partner_registry::storage::{
    PartnerRepository, SqlPartnerRepository, SqlTokenKeyRepository, TokenKeyRecord,
    TokenKeyRepository,
};
use partner_registry_migration::Migrator;
use pmp_common::db::testing::{TestDatabase, backends};
use pmp_common::event_feed::{FeedSource, Outbox, current_version};
use pmp_common::signing::{KeyLocation, KeyState};

async fn repository(backend: &str) -> (TestDatabase, SqlPartnerRepository) {
    let database = TestDatabase::new(backend).await.expect("database");
    Migrator::up(&database.connection, None)
        .await
        .expect("migrate");
    let repository = SqlPartnerRepository::new(database.connection.clone());
    (database, repository)
}

fn partner(id: &str, email: &str) -> Partner {
    partner_registry::testing::partner_record(id, email)
}

fn audit(action: &str, entity: &str, before: Option<&str>, after: &str) -> AuditEvent {
    AuditEvent {
        actor: "tester".into(),
        action: action.into(),
        entity_id: entity.into(),
        before_state: before.map(str::to_owned),
        after_state: Some(after.into()),
        trace_id: "0123456789abcdef0123456789abcdef".into(),
    }
}

/// Takes the partner's lease as a registry step does; returns its token.
async fn lease(repository: &SqlPartnerRepository, partner_id: &str) -> String {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let now = Utc::now();
    assert!(
        repository
            .acquire_lease(partner_id, &token, now + chrono::Duration::seconds(30), now)
            .await
            .expect("query"),
        "lease of {partner_id} is free"
    );
    token
}

async fn create(
    repository: &SqlPartnerRepository,
    id: &str,
    email: &str,
) -> Result<(), RegistryError> {
    repository
        .create_partner(
            &partner(id, email),
            "$argon2id$hash",
            &["FTM_PROVIDER".into()],
            audit("PARTNER_REGISTERED", id, None, "IN_PROGRESS"),
        )
        .await
}

#[tokio::test]
async fn partner_types_resolve_case_insensitively() {
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        for requested in ["FTM_PROVIDER", "ftm_provider", " FTM_Provider "] {
            assert_eq!(
                repository
                    .canonical_partner_type(requested)
                    .await
                    .expect("query")
                    .as_deref(),
                Some("FTM_Provider"),
                "{backend}"
            );
        }
        assert_eq!(
            repository
                .canonical_partner_type("Chip_Maker")
                .await
                .expect("query"),
            None,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn create_find_and_uniqueness() {
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        create(&repository, "acme", "ops@acme.example")
            .await
            .expect("created");
        let stored = repository
            .find_partner("acme")
            .await
            .expect("query")
            .expect("exists");
        assert_eq!(stored.email, "ops@acme.example");
        assert_eq!(stored.status, PartnerStatus::InProgress);
        let user = repository
            .find_user("acme")
            .await
            .expect("query")
            .expect("user");
        assert_eq!(user.roles, ["FTM_PROVIDER"]);

        let duplicate_id = create(&repository, "acme", "other@acme.example").await;
        assert!(
            matches!(duplicate_id, Err(RegistryError::DuplicatePartnerId)),
            "{backend}: {duplicate_id:?}"
        );
        let duplicate_email = create(&repository, "acme2", "OPS@acme.example").await;
        assert!(
            matches!(duplicate_email, Err(RegistryError::DuplicateEmail)),
            "{backend}: {duplicate_email:?}"
        );
        assert!(
            repository
                .find_partner("acme2")
                .await
                .expect("query")
                .is_none(),
            "{backend}: nothing half-written"
        );
        assert!(
            repository
                .find_user("acme2")
                .await
                .expect("query")
                .is_none(),
            "{backend}: nothing half-written"
        );
    }
}

#[tokio::test]
async fn listing_pages_by_id_with_filters() {
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        for index in 0..5 {
            create(
                &repository,
                &format!("p{index}"),
                &format!("p{index}@x.example"),
            )
            .await
            .expect("created");
        }
        let token = lease(&repository, "p3").await;
        repository
            .set_status(
                "p3",
                PartnerStatus::Deactivated,
                audit(
                    "PARTNER_DEACTIVATED",
                    "p3",
                    Some("IN_PROGRESS"),
                    "DEACTIVATED",
                ),
                &token,
            )
            .await
            .expect("deactivated");
        let filter = PartnerFilter {
            partner_type: Some("FTM_Provider".into()),
            status: Some(PartnerStatus::InProgress),
        };
        let first = repository
            .list_partners(&filter, None, 2)
            .await
            .expect("page");
        assert_eq!(first.total_size, 4, "{backend}");
        assert!(first.has_more);
        let ids: Vec<_> = first
            .partners
            .iter()
            .map(|p| p.partner_id.as_str())
            .collect();
        assert_eq!(ids, ["p0", "p1"], "{backend}");
        let second = repository
            .list_partners(&filter, Some("p1"), 2)
            .await
            .expect("page");
        let ids: Vec<_> = second
            .partners
            .iter()
            .map(|p| p.partner_id.as_str())
            .collect();
        assert_eq!(ids, ["p2", "p4"], "{backend}");
        assert!(!second.has_more, "{backend}");
    }
}

#[tokio::test]
async fn certificate_activation_status_changes_and_audit_rows() {
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        create(&repository, "acme", "a@x.example")
            .await
            .expect("created");
        let token = lease(&repository, "acme").await;
        let active = repository
            .attach_certificate(
                "acme",
                "cert-1",
                audit(
                    "PARTNER_CERTIFICATE_UPLOADED",
                    "acme",
                    Some("IN_PROGRESS"),
                    "ACTIVE",
                ),
                &token,
            )
            .await
            .expect("attached");
        // Recording the same certificate again (a retried step) changes nothing.
        let again = repository
            .attach_certificate(
                "acme",
                "cert-1",
                audit(
                    "PARTNER_CERTIFICATE_UPLOADED",
                    "acme",
                    Some("ACTIVE"),
                    "ACTIVE",
                ),
                &token,
            )
            .await
            .expect("attached again");
        assert_eq!(again, active, "{backend}");
        assert_eq!(active.status, PartnerStatus::Active, "{backend}");
        assert_eq!(active.certificate_id.as_deref(), Some("cert-1"));
        let deactivated = repository
            .set_status(
                "acme",
                PartnerStatus::Deactivated,
                audit("PARTNER_DEACTIVATED", "acme", Some("ACTIVE"), "DEACTIVATED"),
                &token,
            )
            .await
            .expect("deactivated");
        assert_eq!(deactivated.status, PartnerStatus::Deactivated);
        // A certificate attached to a deactivated partner does not re-activate it.
        let still = repository
            .attach_certificate(
                "acme",
                "cert-2",
                audit(
                    "PARTNER_CERTIFICATE_UPLOADED",
                    "acme",
                    Some("DEACTIVATED"),
                    "DEACTIVATED",
                ),
                &token,
            )
            .await
            .expect("attached");
        assert_eq!(still.status, PartnerStatus::Deactivated, "{backend}");

        let events = repository.audit_events("acme").await.expect("audit");
        let actions: Vec<_> = events.iter().map(|event| event.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "PARTNER_REGISTERED",
                "PARTNER_CERTIFICATE_UPLOADED",
                "PARTNER_DEACTIVATED",
                "PARTNER_CERTIFICATE_UPLOADED"
            ],
            "{backend}"
        );
        assert_eq!(events[2].before_state.as_deref(), Some("ACTIVE"));
        assert_eq!(events[2].after_state.as_deref(), Some("DEACTIVATED"));
        assert_eq!(events[0].trace_id.len(), 32);

        // Without the lease, nothing is written.
        let interrupted = repository
            .set_status(
                "acme",
                PartnerStatus::Active,
                audit("PARTNER_ACTIVATED", "acme", None, "ACTIVE"),
                "someone-else",
            )
            .await;
        assert!(
            matches!(interrupted, Err(RegistryError::Interrupted)),
            "{backend}: {interrupted:?}"
        );
        let missing = repository
            .set_status(
                "nobody",
                PartnerStatus::Active,
                audit("PARTNER_ACTIVATED", "nobody", None, "ACTIVE"),
                &token,
            )
            .await;
        assert!(
            matches!(missing, Err(RegistryError::PartnerNotFound)),
            "{backend}"
        );
        assert!(
            repository
                .audit_events("nobody")
                .await
                .expect("audit")
                .is_empty(),
            "{backend}: no audit for a failed change"
        );
    }
}

#[tokio::test]
async fn bootstrap_user_is_created_once() {
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        assert!(
            repository
                .ensure_user("admin", "h1", &["PARTNER_ADMIN".into()])
                .await
                .expect("insert"),
            "{backend}"
        );
        assert!(
            !repository
                .ensure_user("admin", "h2", &["PARTNER_ADMIN".into()])
                .await
                .expect("insert"),
            "{backend}"
        );
        let user = repository
            .find_user("admin")
            .await
            .expect("query")
            .expect("exists");
        assert_eq!(user.password_hash, "h1", "{backend}: never overwritten");
        assert!(
            repository
                .find_partner("admin")
                .await
                .expect("query")
                .is_none(),
            "{backend}: not a partner"
        );
    }
}

#[tokio::test]
async fn migrations_roll_back_and_forward() {
    for backend in backends() {
        let database = TestDatabase::new(backend).await.expect("database");
        Migrator::up(&database.connection, None).await.expect("up");
        Migrator::down(&database.connection, None)
            .await
            .expect("down");
        let repository = SqlPartnerRepository::new(database.connection.clone());
        assert!(
            repository.find_partner("x").await.is_err(),
            "{backend}: tables dropped"
        );
        Migrator::up(&database.connection, None)
            .await
            .expect("up again");
        assert!(
            repository.find_partner("x").await.expect("query").is_none(),
            "{backend}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_status_changes_all_succeed_and_are_all_audited() {
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        create(&repository, "acme", "a@x.example")
            .await
            .expect("created");
        let token = lease(&repository, "acme").await;
        let repository = std::sync::Arc::new(repository);
        let changes = (0..12).map(|index| {
            let repository = std::sync::Arc::clone(&repository);
            let token = token.clone();
            tokio::spawn(async move {
                let status = if index % 2 == 0 {
                    PartnerStatus::Deactivated
                } else {
                    PartnerStatus::Active
                };
                repository
                    .set_status(
                        "acme",
                        status,
                        audit("STATUS", "acme", None, status.as_str()),
                        &token,
                    )
                    .await
            })
        });
        for change in futures::future::join_all(changes).await {
            change
                .expect("task")
                .unwrap_or_else(|error| panic!("{backend}: {error}"));
        }
        // Writes of the status already stored are skipped, so there are at most 12 change
        // rows; none is lost: the last row describes the stored status.
        let events = repository.audit_events("acme").await.expect("audit");
        assert!((2..=13).contains(&events.len()), "{backend}: {events:?}");
        let stored = repository
            .find_partner("acme")
            .await
            .expect("query")
            .expect("stored");
        assert_eq!(
            events.last().and_then(|event| event.after_state.as_deref()),
            Some(stored.status.as_str()),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn leases_are_exclusive_expire_and_are_taken_over() {
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        create(&repository, "acme", "a@x.example")
            .await
            .expect("created");
        let now = Utc::now();
        let later = now + chrono::Duration::seconds(30);
        assert!(
            repository
                .acquire_lease("acme", "first", later, now)
                .await
                .expect("query"),
            "{backend}: free lease taken"
        );
        assert!(
            !repository
                .acquire_lease("acme", "second", later, now)
                .await
                .expect("query"),
            "{backend}: a live lease excludes others"
        );
        assert!(
            !repository
                .acquire_lease("nobody", "x", later, now)
                .await
                .expect("query"),
            "{backend}: unknown partner"
        );
        assert!(
            repository
                .stale_leases(now, 10)
                .await
                .expect("query")
                .is_empty(),
            "{backend}: nothing stale yet"
        );
        // A failed step leaves its lease as an expired marker for the reconciler.
        assert!(
            repository
                .abandon_lease("acme", "first", now)
                .await
                .expect("query")
        );
        let stale = repository
            .stale_leases(now + chrono::Duration::seconds(1), 10)
            .await
            .expect("query");
        assert_eq!(stale.len(), 1, "{backend}");
        assert_eq!(stale[0].id, "acme");
        assert_eq!(stale[0].token, "first");
        let marker = stale[0].clone();
        let takeover_time = now + chrono::Duration::seconds(1);
        assert!(
            repository
                .take_over_lease(&marker, "reconciler", later, takeover_time)
                .await
                .expect("query"),
            "{backend}: the reconciler takes it over"
        );
        assert!(
            !repository
                .take_over_lease(&marker, "another", later, takeover_time)
                .await
                .expect("query"),
            "{backend}: only once"
        );
        assert!(
            !repository
                .release_lease("acme", "first")
                .await
                .expect("query"),
            "{backend}: the old holder lost it"
        );
        assert!(
            repository
                .release_lease("acme", "reconciler")
                .await
                .expect("query")
        );
        assert!(
            repository
                .acquire_lease("acme", "third", later, now)
                .await
                .expect("query"),
            "{backend}: free again"
        );
    }
}

#[tokio::test]
async fn the_trust_model_migration_marks_partners_for_reconciliation() {
    use sea_orm::ConnectionTrait;
    for backend in backends() {
        let database = TestDatabase::new(backend).await.expect("database");
        Migrator::up(&database.connection, Some(1))
            .await
            .expect("initial schema");
        let repository = SqlPartnerRepository::new(database.connection.clone());
        // Rows as the previous schema wrote them: without a certificate, with one, and
        // deactivated without one.
        for (id, status, certificate) in [
            ("fresh", "IN_PROGRESS", None),
            ("active", "ACTIVE", Some("cert-1")),
            ("gone", "DEACTIVATED", None),
        ] {
            let certificate = certificate.map_or("NULL".to_owned(), |id| format!("'{id}'"));
            for statement in [
                format!(
                    "INSERT INTO users (username, password_hash, roles, create_time) \
                     VALUES ('{id}', 'hash', 'FTM_PROVIDER', CURRENT_TIMESTAMP)"
                ),
                format!(
                    "INSERT INTO partners (partner_id, first_name, last_name, \
                     organization_name, partner_type, address, email, email_normalized, phone, \
                     lang_code, status, certificate_id, create_time, update_time) VALUES \
                     ('{id}', 'Ada', 'Lovelace', 'ACME', 'FTM_Provider', '1 Main St', \
                     '{id}@x.example', '{id}@x.example', '12345', 'eng', '{status}', \
                     {certificate}, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
            ] {
                database
                    .connection
                    .execute_unprepared(&statement)
                    .await
                    .expect("old-style row");
            }
        }
        Migrator::up(&database.connection, None)
            .await
            .expect("trust model");
        let mut marked: Vec<String> = repository
            .stale_leases(Utc::now(), 10)
            .await
            .expect("query")
            .into_iter()
            .map(|marker| marker.id)
            .collect();
        marked.sort();
        assert_eq!(marked, ["active", "gone"], "{backend}");
        Migrator::down(&database.connection, Some(1))
            .await
            .expect("down");
        Migrator::up(&database.connection, None)
            .await
            .expect("up again");
    }
}

fn token_key(key_id: &str, location: KeyLocation, state: KeyState) -> TokenKeyRecord {
    let now = Utc::now().trunc_subsecs(3);
    TokenKeyRecord {
        key_id: key_id.into(),
        public_key_pem: format!("public key of {key_id}"),
        location,
        state,
        added_at: now,
        activated_at: (state == KeyState::Active).then_some(now),
        retired_at: None,
    }
}

fn key_audit(action: &str, key_id: &str) -> AuditEvent {
    AuditEvent {
        actor: "tester".into(),
        action: action.into(),
        entity_id: key_id.into(),
        before_state: None,
        after_state: Some("x".into()),
        trace_id: "0123456789abcdef0123456789abcdef".into(),
    }
}

#[tokio::test]
async fn token_keys_are_adopted_once_added_and_activated_one_at_a_time() {
    for backend in backends() {
        let (database, _) = repository(backend).await;
        let keys = SqlTokenKeyRepository::new(database.connection.clone());
        let other = SqlTokenKeyRepository::new(
            pmp_common::db::connect(&database.settings)
                .await
                .expect("second pool"),
        );
        let configured = token_key(
            "first",
            KeyLocation::File("/secrets/token/key.pem".into()),
            KeyState::Active,
        );
        let (a, b) = tokio::join!(
            keys.adopt_initial_token_key(&configured),
            other.adopt_initial_token_key(&configured)
        );
        a.expect("adopted");
        b.expect("adopted");
        assert_eq!(
            keys.token_keys().await.expect("keys"),
            std::slice::from_ref(&configured),
            "{backend}"
        );
        let next = token_key(
            "second",
            KeyLocation::Hsm("tokens-2027".into()),
            KeyState::Next,
        );
        keys.insert_token_key(&next, key_audit("TOKEN_SIGNING_KEY_ADDED", "second"))
            .await
            .expect("added");
        let again = keys
            .insert_token_key(&next, key_audit("TOKEN_SIGNING_KEY_ADDED", "second"))
            .await;
        assert!(
            matches!(again, Err(RegistryError::KeyExists)),
            "{backend}: {again:?}"
        );

        let at = Utc::now().trunc_subsecs(3);
        let activated = keys
            .activate_token_key(
                "second",
                at,
                at,
                key_audit("TOKEN_SIGNING_KEY_ACTIVATED", "second"),
            )
            .await
            .expect("activated");
        assert_eq!(
            (activated.state, activated.activated_at),
            (KeyState::Active, Some(at))
        );
        let states: Vec<_> = other
            .token_keys()
            .await
            .expect("keys")
            .into_iter()
            .map(|key| (key.key_id, key.state, key.retired_at))
            .collect();
        assert_eq!(
            states,
            [
                ("first".to_owned(), KeyState::Previous, Some(at)),
                ("second".to_owned(), KeyState::Active, None)
            ],
            "{backend}"
        );
        let same = keys
            .activate_token_key(
                "second",
                at + chrono::Duration::seconds(9),
                at,
                key_audit("TOKEN_SIGNING_KEY_ACTIVATED", "second"),
            )
            .await
            .expect("idempotent");
        assert_eq!(same.activated_at, Some(at), "{backend}");
        let unknown = keys
            .activate_token_key(
                "nobody",
                at,
                at,
                key_audit("TOKEN_SIGNING_KEY_ACTIVATED", "nobody"),
            )
            .await;
        assert!(
            matches!(unknown, Err(RegistryError::KeyNotFound)),
            "{backend}: {unknown:?}"
        );
    }
}

// The outbox of `WatchPartnerEvents` (the stream itself: `tests/events.rs`).

fn outbox(database: &TestDatabase) -> Outbox {
    Outbox::new(database.connection.clone())
}

#[tokio::test]
async fn each_change_records_its_events_in_order() {
    for backend in backends() {
        let (database, repository) = repository(backend).await;
        create(&repository, "acme", "a@x.example")
            .await
            .expect("created");
        let token = lease(&repository, "acme").await;
        let change = || audit("CHANGE", "acme", None, "-");
        repository
            .attach_certificate("acme", "cert-1", change(), &token)
            .await
            .expect("attached");
        // The same status twice: the second changes nothing and records nothing.
        for status in [
            PartnerStatus::Deactivated,
            PartnerStatus::Deactivated,
            PartnerStatus::Active,
        ] {
            repository
                .set_status("acme", status, change(), &token)
                .await
                .expect("status set");
        }
        let events: Vec<(i64, PartnerEvent)> =
            outbox(&database).all_events().await.expect("events");
        let Some((
            1,
            PartnerEvent::Registered {
                partner: registered,
            },
        )) = events.first()
        else {
            panic!("{backend}: {events:?}");
        };
        assert_eq!(
            registered,
            &PartnerState::from(&partner("acme", "a@x.example")),
            "{backend}"
        );
        let activated = PartnerEvent::Activated {
            partner_id: "acme".into(),
            status: PartnerStatus::Active,
        };
        assert_eq!(
            events[1..],
            [
                (
                    2,
                    PartnerEvent::CertificateUploaded {
                        partner_id: "acme".into(),
                        certificate_id: "cert-1".into(),
                    }
                ),
                (3, activated.clone()),
                (
                    4,
                    PartnerEvent::Deactivated {
                        partner_id: "acme".into(),
                    }
                ),
                (5, activated),
            ],
            "{backend}"
        );
        assert_eq!(
            current_version(&database.connection)
                .await
                .expect("version"),
            5,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn a_change_that_does_not_commit_records_no_event() {
    for backend in backends() {
        let (database, repository) = repository(backend).await;
        create(&repository, "acme", "a@x.example")
            .await
            .expect("created");
        // The user row is inserted, then the e-mail is refused: the transaction rolls back,
        // its event with it.
        assert!(
            matches!(
                create(&repository, "other", "A@X.example").await,
                Err(RegistryError::DuplicateEmail)
            ),
            "{backend}"
        );
        // A step whose lease was taken over writes nothing.
        let written = repository
            .set_status(
                "acme",
                PartnerStatus::Deactivated,
                audit("CHANGE", "acme", None, "-"),
                "stale",
            )
            .await;
        assert!(
            matches!(written, Err(RegistryError::Interrupted)),
            "{backend}"
        );
        assert_eq!(
            current_version(&database.connection)
                .await
                .expect("version"),
            1,
            "{backend}: the failed change gave its version back"
        );
        // The next change takes the next version: no gap for a reader to take for a pruned
        // row.
        create(&repository, "other", "o@x.example")
            .await
            .expect("created");
        let events: Vec<(i64, PartnerEvent)> =
            outbox(&database).all_events().await.expect("events");
        let versions: Vec<i64> = events.iter().map(|(version, _)| *version).collect();
        assert_eq!(versions, [1, 2], "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_changes_take_dense_increasing_versions() {
    for backend in backends() {
        let (database, repository) = repository(backend).await;
        let repository = std::sync::Arc::new(repository);
        let creations = (0..16).map(|index| {
            let repository = std::sync::Arc::clone(&repository);
            tokio::spawn(async move {
                let id = format!("p{index}");
                create(&repository, &id, &format!("{id}@x.example")).await
            })
        });
        for created in futures::future::join_all(creations).await {
            created
                .expect("task")
                .unwrap_or_else(|error| panic!("{backend}: {error}"));
        }
        let events: Vec<(i64, PartnerEvent)> =
            outbox(&database).all_events().await.expect("events");
        let versions: Vec<i64> = events.iter().map(|(version, _)| *version).collect();
        assert_eq!(versions, (1..=16).collect::<Vec<_>>(), "{backend}");
        let mut registered: Vec<String> = events
            .into_iter()
            .filter_map(|(_, event)| match event {
                PartnerEvent::Registered { partner } => Some(partner.partner_id),
                _ => None,
            })
            .collect();
        registered.sort();
        registered.dedup();
        assert_eq!(registered.len(), 16, "{backend}: one event per partner");
    }
}

#[tokio::test]
async fn a_snapshot_holds_every_partner_at_its_version() {
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        for (id, email) in [("beta", "b@x.example"), ("alpha", "a@x.example")] {
            create(&repository, id, email).await.expect("created");
        }
        let snapshot = repository.snapshot().await.expect("snapshot");
        assert_eq!(snapshot.version, 2, "{backend}");
        let ids: Vec<&str> = snapshot
            .states
            .iter()
            .map(|state| state.partner_id.as_str())
            .collect();
        assert_eq!(ids, ["alpha", "beta"], "{backend}: in partner-id order");
        assert!(
            snapshot
                .states
                .iter()
                .all(|state| state.status == PartnerStatus::InProgress),
            "{backend}"
        );
    }
}
