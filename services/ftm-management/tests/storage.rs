//! The repository, run once on SQLite and once on PostgreSQL (when `PMP_TEST_POSTGRES_URL`
//! names a server): same test functions on both backends.

use chrono::{DateTime, Duration as TimeDelta, Utc};
use pmp_common::lease::LeaseStore;
use sea_orm_migration::MigratorTrait;

use ftm_management::domain::{
    self, AuditEvent, Cursor, Ftm, FtmChange, FtmEvent, FtmFilter, FtmStatus, ListQuery, Ordering,
    SortField, search_key,
};
use ftm_management::error::FtmError;
use ftm_management::storage::{FtmRepository, SqlFtmRepository};
use ftm_management_migration::Migrator;
use pmp_common::db::testing::{TestDatabase, backends};
use pmp_common::event_feed::{FeedSource, Outbox};

async fn repository(backend: &str) -> (TestDatabase, SqlFtmRepository) {
    let database = TestDatabase::new(backend).await.expect("database");
    Migrator::up(&database.connection, None)
        .await
        .expect("migrate");
    let repository = SqlFtmRepository::new(database.connection.clone());
    (database, repository)
}

fn base_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 123_456_000).expect("time")
}

fn ftm(id: &str, partner: &str, make: &str, model: &str, status: FtmStatus) -> Ftm {
    let now = domain::now();
    Ftm {
        ftm_id: id.into(),
        partner_id: partner.into(),
        organization_name: format!("{partner} Chips"),
        make: make.into(),
        model: model.into(),
        status,
        certificate_id: (status != FtmStatus::PendingCertUpload).then(|| format!("{id}-cert")),
        certificate_expiry_time: None,
        reject_reason: None,
        create_time: now,
        update_time: now,
    }
}

fn audit(action: &str, id: &str, before: Option<FtmStatus>, after: FtmStatus) -> AuditEvent {
    AuditEvent {
        actor: "tester".into(),
        action: action.into(),
        entity_id: id.into(),
        before_state: before.map(|status| status.as_str().to_owned()),
        after_state: Some(after.as_str().to_owned()),
        trace_id: "0123456789abcdef0123456789abcdef".into(),
    }
}

async fn create(repository: &SqlFtmRepository, ftm: &Ftm) -> Result<(), FtmError> {
    repository
        .create(
            ftm,
            audit(
                "FTM_CREATED",
                &ftm.ftm_id,
                None,
                FtmStatus::PendingCertUpload,
            ),
        )
        .await
}

/// Moves an FTM to `to` through the lease, as the service does.
async fn transition(repository: &SqlFtmRepository, id: &str, from: FtmStatus, to: FtmStatus) {
    let now = domain::now();
    assert!(
        repository
            .acquire_lease(id, from, "token", now + TimeDelta::seconds(30), now)
            .await
            .expect("acquire"),
        "lease of {id}"
    );
    let stored = repository.find(id).await.expect("find").expect("exists");
    let change = FtmChange {
        status: to,
        certificate_id: stored.certificate_id,
        certificate_expiry_time: None,
        reject_reason: (to == FtmStatus::Rejected).then(|| "no".to_owned()),
    };
    repository
        .complete(
            id,
            "token",
            from,
            &change,
            audit("FTM_X", id, Some(from), to),
        )
        .await
        .expect("complete")
        .expect("applied");
}

#[tokio::test]
async fn create_find_and_audit() {
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        let mut new = ftm(
            "ftm_1",
            "acme",
            "Secure Element",
            "SE 1",
            FtmStatus::PendingCertUpload,
        );
        new.create_time = base_time();
        new.update_time = base_time();
        create(&repository, &new).await.expect("created");
        let stored = repository
            .find("ftm_1")
            .await
            .expect("find")
            .expect("exists");
        assert_eq!(
            stored, new,
            "{backend}: stored exactly, microsecond times included"
        );
        assert!(repository.find("ftm_2").await.expect("find").is_none());
        let events = repository.audit_events("ftm_1").await.expect("audit");
        assert_eq!(events.len(), 1, "{backend}");
        assert_eq!(events[0].action, "FTM_CREATED");
        assert_eq!(
            events[0].after_state.as_deref(),
            Some("PENDING_CERT_UPLOAD")
        );
        assert_eq!(events[0].before_state, None);
        assert_eq!(events[0].actor, "tester");
        assert_eq!(events[0].trace_id.len(), 32);
    }
}

#[tokio::test]
async fn live_make_and_model_are_unique_per_partner_ignoring_case() {
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        create(
            &repository,
            &ftm(
                "ftm_1",
                "acme",
                "Acme Chip",
                "M 1",
                FtmStatus::PendingCertUpload,
            ),
        )
        .await
        .expect("first");
        let same = ftm(
            "ftm_2",
            "acme",
            "ACME chip",
            "m 1",
            FtmStatus::PendingCertUpload,
        );
        let refused = create(&repository, &same).await;
        assert!(
            matches!(refused, Err(FtmError::DuplicateMakeModel)),
            "{backend}: {refused:?}"
        );
        assert!(
            repository
                .audit_events("ftm_2")
                .await
                .expect("audit")
                .is_empty(),
            "{backend}: no audit row for a refused create"
        );
        // Another partner, or another model, is fine.
        create(
            &repository,
            &ftm(
                "ftm_3",
                "other",
                "Acme Chip",
                "M 1",
                FtmStatus::PendingCertUpload,
            ),
        )
        .await
        .expect("other partner");
        create(
            &repository,
            &ftm(
                "ftm_4",
                "acme",
                "Acme Chip",
                "M 2",
                FtmStatus::PendingCertUpload,
            ),
        )
        .await
        .expect("other model");
        // Rejected and deactivated FTMs do not block.
        transition(
            &repository,
            "ftm_1",
            FtmStatus::PendingCertUpload,
            FtmStatus::PendingApproval,
        )
        .await;
        transition(
            &repository,
            "ftm_1",
            FtmStatus::PendingApproval,
            FtmStatus::Rejected,
        )
        .await;
        create(&repository, &same).await.expect("after rejection");
        transition(
            &repository,
            "ftm_2",
            FtmStatus::PendingCertUpload,
            FtmStatus::PendingApproval,
        )
        .await;
        transition(
            &repository,
            "ftm_2",
            FtmStatus::PendingApproval,
            FtmStatus::Approved,
        )
        .await;
        let blocked = create(
            &repository,
            &ftm(
                "ftm_5",
                "acme",
                "acme CHIP",
                "M 1",
                FtmStatus::PendingCertUpload,
            ),
        )
        .await;
        assert!(
            matches!(blocked, Err(FtmError::DuplicateMakeModel)),
            "{backend}: approved blocks"
        );
        transition(
            &repository,
            "ftm_2",
            FtmStatus::Approved,
            FtmStatus::Deactivated,
        )
        .await;
        create(
            &repository,
            &ftm(
                "ftm_5",
                "acme",
                "acme CHIP",
                "M 1",
                FtmStatus::PendingCertUpload,
            ),
        )
        .await
        .expect("after deactivation");
        // Imports follow the same rule.
        let imported = repository
            .import(&[ftm(
                "ftm_6",
                "acme",
                "Acme Chip",
                "m 1",
                FtmStatus::PendingApproval,
            )])
            .await;
        assert!(
            matches!(imported, Err(FtmError::DuplicateMakeModel)),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn leases_serialise_steps_and_mark_unfinished_ones() {
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        create(
            &repository,
            &ftm("ftm_1", "acme", "Chip", "M", FtmStatus::PendingCertUpload),
        )
        .await
        .expect("created");
        let now = domain::now();
        let later = now + TimeDelta::seconds(30);
        assert!(
            !repository
                .acquire_lease("ftm_1", FtmStatus::Approved, "a", later, now)
                .await
                .expect("acquire"),
            "{backend}: compare-and-set on the status"
        );
        assert!(
            repository
                .acquire_lease("ftm_1", FtmStatus::PendingCertUpload, "a", later, now)
                .await
                .expect("acquire")
        );
        assert!(
            !repository
                .acquire_lease("ftm_1", FtmStatus::PendingCertUpload, "b", later, now)
                .await
                .expect("acquire"),
            "{backend}: a live lease excludes others"
        );
        let change = FtmChange {
            status: FtmStatus::PendingApproval,
            certificate_id: Some("cert-1".into()),
            certificate_expiry_time: Some(base_time()),
            reject_reason: None,
        };
        let event = || {
            audit(
                "FTM_CERTIFICATE_UPLOADED",
                "ftm_1",
                Some(FtmStatus::PendingCertUpload),
                FtmStatus::PendingApproval,
            )
        };
        assert_eq!(
            repository
                .complete("ftm_1", "b", FtmStatus::PendingCertUpload, &change, event())
                .await
                .expect("complete"),
            None,
            "{backend}: not the lease holder"
        );
        assert_eq!(
            repository
                .complete("ftm_1", "a", FtmStatus::Approved, &change, event())
                .await
                .expect("complete"),
            None,
            "{backend}: not the expected status"
        );
        assert_eq!(
            repository.audit_events("ftm_1").await.expect("audit").len(),
            1,
            "{backend}: nothing written"
        );
        let updated = repository
            .complete("ftm_1", "a", FtmStatus::PendingCertUpload, &change, event())
            .await
            .expect("complete")
            .expect("applied");
        assert_eq!(updated.status, FtmStatus::PendingApproval);
        assert_eq!(updated.certificate_id.as_deref(), Some("cert-1"));
        assert_eq!(updated.certificate_expiry_time, Some(base_time()));
        assert!(updated.update_time >= updated.create_time);
        assert_eq!(
            repository.sync_marker("ftm_1").await.expect("marker"),
            None,
            "{backend}: lease removed"
        );
        let actions: Vec<_> = repository
            .audit_events("ftm_1")
            .await
            .expect("audit")
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(
            actions,
            ["FTM_CREATED", "FTM_CERTIFICATE_UPLOADED"],
            "{backend}"
        );

        // A failed step leaves a marker the reconciler finds.
        let now = domain::now();
        assert!(
            repository
                .acquire_lease(
                    "ftm_1",
                    FtmStatus::PendingApproval,
                    "c",
                    now + TimeDelta::seconds(30),
                    now
                )
                .await
                .expect("acquire")
        );
        assert!(
            repository
                .stale_leases(now, 10)
                .await
                .expect("stale")
                .is_empty(),
            "{backend}: live lease is not stale"
        );
        assert!(
            repository
                .abandon_lease("ftm_1", "c", now)
                .await
                .expect("abandon")
        );
        let stale = repository.stale_leases(now, 10).await.expect("stale");
        assert_eq!(stale.len(), 1, "{backend}");
        assert_eq!(stale[0].token, "c");
        assert_eq!(
            repository
                .sync_marker("ftm_1")
                .await
                .expect("marker")
                .as_ref(),
            Some(&stale[0])
        );
        // An abandoned lease does not block a retry...
        let retry_now = now + TimeDelta::milliseconds(1);
        assert!(
            repository
                .acquire_lease(
                    "ftm_1",
                    FtmStatus::PendingApproval,
                    "d",
                    retry_now + TimeDelta::seconds(30),
                    retry_now
                )
                .await
                .expect("acquire"),
            "{backend}"
        );
        // ...and a take-over needs the marker as it was and expired.
        assert!(
            !repository
                .take_over_lease(
                    &stale[0],
                    "e",
                    retry_now + TimeDelta::seconds(30),
                    retry_now
                )
                .await
                .expect("take over"),
            "{backend}"
        );
        assert!(
            repository
                .abandon_lease("ftm_1", "d", retry_now)
                .await
                .expect("abandon")
        );
        let marker = repository
            .sync_marker("ftm_1")
            .await
            .expect("marker")
            .expect("marker");
        assert!(
            repository
                .take_over_lease(&marker, "e", retry_now + TimeDelta::seconds(30), retry_now)
                .await
                .expect("take over"),
            "{backend}"
        );
        assert!(
            !repository
                .release_lease("ftm_1", "d")
                .await
                .expect("release"),
            "{backend}: not ours any more"
        );
        assert!(
            repository
                .release_lease("ftm_1", "e")
                .await
                .expect("release")
        );
        assert_eq!(repository.sync_marker("ftm_1").await.expect("marker"), None);
        // An expired lease (crashed holder) can be taken by the next step.
        let now = domain::now();
        assert!(
            repository
                .acquire_lease(
                    "ftm_1",
                    FtmStatus::PendingApproval,
                    "f",
                    now - TimeDelta::seconds(1),
                    now
                )
                .await
                .expect("acquire")
        );
        assert!(
            repository
                .acquire_lease(
                    "ftm_1",
                    FtmStatus::PendingApproval,
                    "g",
                    now + TimeDelta::seconds(30),
                    now
                )
                .await
                .expect("acquire"),
            "{backend}"
        );
    }
}

/// Which fixture FTMs a filter should match.
type Predicate = Box<dyn Fn(&Ftm) -> bool>;

/// 24 FTMs over three partners with distinct and tied times, every status.
fn listing_fixture() -> Vec<Ftm> {
    let makes = ["alpha", "Bravo", "charlie", "DELTA"];
    (0..24)
        .map(|index: i64| {
            let status = FtmStatus::ALL[usize::try_from(index).expect("index") % 5];
            let mut ftm = ftm(
                &format!("ftm_{index:02}"),
                &format!("p{}", index % 3),
                makes[usize::try_from(index).expect("index") % 4],
                &format!("m{:02}", (index * 7) % 24),
                status,
            );
            // Pairs share a create time: ties are broken by the id.
            ftm.create_time = base_time() + TimeDelta::seconds(index / 2);
            ftm.update_time = base_time() + TimeDelta::milliseconds(1000 * (24 - index) + 1);
            ftm
        })
        .collect()
}

fn expected_order(ftms: &[Ftm], filter: impl Fn(&Ftm) -> bool, ordering: Ordering) -> Vec<String> {
    let mut selected: Vec<&Ftm> = ftms.iter().filter(|ftm| filter(ftm)).collect();
    selected.sort_by(|a, b| {
        let key = |ftm: &Ftm| match ordering.field {
            SortField::CreateTime => format!("{:020}", ftm.create_time.timestamp_micros()),
            SortField::UpdateTime => format!("{:020}", ftm.update_time.timestamp_micros()),
            SortField::Make => search_key(&ftm.make),
            SortField::Model => search_key(&ftm.model),
            SortField::PartnerId => ftm.partner_id.clone(),
            SortField::Status => ftm.status.as_str().to_owned(),
        };
        (key(a), &a.ftm_id).cmp(&(key(b), &b.ftm_id))
    });
    if ordering.descending {
        selected.reverse();
    }
    selected.into_iter().map(|ftm| ftm.ftm_id.clone()).collect()
}

async fn all_pages(
    repository: &SqlFtmRepository,
    filter: FtmFilter,
    ordering: Ordering,
    limit: u64,
) -> (Vec<String>, u64) {
    let mut seen = Vec::new();
    let mut after = None;
    let mut total = None;
    loop {
        let page = repository
            .list(&ListQuery {
                filter: filter.clone(),
                ordering,
                after: after.clone(),
                limit,
            })
            .await
            .expect("page");
        assert!(page.ftms.len() as u64 <= limit);
        if let Some(total) = total {
            assert_eq!(page.total_size, total, "total is stable across pages");
        }
        total = Some(page.total_size);
        seen.extend(page.ftms.iter().map(|ftm| ftm.ftm_id.clone()));
        match (page.has_more, page.ftms.last()) {
            (true, Some(last)) => after = Some(Cursor::after(last, ordering.field)),
            _ => break,
        }
    }
    (seen, total.unwrap_or_default())
}

#[tokio::test]
async fn listing_orders_pages_and_filters() {
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        let fixture = listing_fixture();
        repository.import(&fixture).await.expect("imported");
        for field in [
            SortField::CreateTime,
            SortField::UpdateTime,
            SortField::Make,
            SortField::Model,
            SortField::PartnerId,
            SortField::Status,
        ] {
            for descending in [false, true] {
                let ordering = Ordering { field, descending };
                let (seen, total) = all_pages(&repository, FtmFilter::default(), ordering, 5).await;
                assert_eq!(total, 24, "{backend} {ordering:?}");
                assert_eq!(
                    seen,
                    expected_order(&fixture, |_| true, ordering),
                    "{backend} {ordering:?}"
                );
                let own = FtmFilter {
                    partner_id: Some("p1".into()),
                    ..FtmFilter::default()
                };
                let (seen, total) = all_pages(&repository, own, ordering, 3).await;
                assert_eq!(total, 8, "{backend} {ordering:?}");
                assert_eq!(
                    seen,
                    expected_order(&fixture, |ftm| ftm.partner_id == "p1", ordering),
                    "{backend} {ordering:?}"
                );
            }
        }
        let ordering = Ordering::default();
        let cases: Vec<(FtmFilter, Predicate)> = vec![
            (
                FtmFilter {
                    make: Some("ra".into()),
                    ..FtmFilter::default()
                },
                Box::new(|ftm: &Ftm| search_key(&ftm.make).contains("ra")),
            ),
            (
                FtmFilter {
                    model: Some("m1".into()),
                    status: Some("APPROVED".into()),
                    ..FtmFilter::default()
                },
                Box::new(|ftm: &Ftm| {
                    ftm.model.starts_with("m1") && ftm.status == FtmStatus::Approved
                }),
            ),
            (
                FtmFilter {
                    organization_name: Some("p2 chips".into()),
                    ..FtmFilter::default()
                },
                Box::new(|ftm: &Ftm| ftm.partner_id == "p2"),
            ),
            (
                FtmFilter {
                    partner_id: Some("p0".into()),
                    make: Some("delta".into()),
                    ..FtmFilter::default()
                },
                Box::new(|ftm: &Ftm| ftm.partner_id == "p0" && ftm.make == "DELTA"),
            ),
            (
                FtmFilter {
                    make: Some("nothing".into()),
                    ..FtmFilter::default()
                },
                Box::new(|_: &Ftm| false),
            ),
        ];
        for (filter, predicate) in cases {
            let (seen, total) = all_pages(&repository, filter.clone(), ordering, 4).await;
            let expected = expected_order(&fixture, predicate, ordering);
            assert_eq!(total, expected.len() as u64, "{backend} {filter:?}");
            assert_eq!(seen, expected, "{backend} {filter:?}");
        }
        // LIKE wildcards in a filter are literal characters.
        repository
            .import(&[
                ftm("ftm_x1", "p9", "50%off", "x", FtmStatus::PendingCertUpload),
                ftm("ftm_x2", "p9", "50xoff", "x", FtmStatus::PendingCertUpload),
                ftm("ftm_x3", "p9", "a_b", "x", FtmStatus::PendingCertUpload),
                ftm("ftm_x4", "p9", "axb", "x", FtmStatus::PendingCertUpload),
            ])
            .await
            .expect("imported");
        for (needle, expected) in [("50%", vec!["ftm_x1"]), ("a_b", vec!["ftm_x3"])] {
            let filter = FtmFilter {
                make: Some(needle.into()),
                ..FtmFilter::default()
            };
            let (seen, _) = all_pages(&repository, filter, ordering, 10).await;
            assert_eq!(seen, expected, "{backend}: {needle}");
        }
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
        let repository = SqlFtmRepository::new(database.connection.clone());
        assert!(
            repository.find("x").await.is_err(),
            "{backend}: tables dropped"
        );
        assert!(
            repository.audit_events("x").await.is_err(),
            "{backend}: audit dropped"
        );
        Migrator::up(&database.connection, None)
            .await
            .expect("up again");
        assert!(
            repository.find("x").await.expect("query").is_none(),
            "{backend}"
        );
        create(
            &repository,
            &ftm("ftm_1", "acme", "Chip", "M", FtmStatus::PendingCertUpload),
        )
        .await
        .expect("usable after re-creation");
    }
}

/// 100,000 FTMs: a page query and the count still work, and the page queries a provider or
/// an admin makes are answered from an index, never by sorting the table. (Timings belong
/// in benchmarks, not here.)
#[tokio::test]
async fn a_hundred_thousand_ftms_are_listed_from_indexes() {
    let (_database, repository) = repository("sqlite").await;
    let partners = 200;
    let mut batch = Vec::with_capacity(10_000);
    for index in 0..100_000_i64 {
        let status = FtmStatus::ALL[usize::try_from(index % 5).expect("index")];
        let mut ftm = ftm(
            &format!("ftm_{index:08}"),
            &format!("partner-{:03}", index % partners),
            &format!("Make {}", index % 97),
            &format!("Model {index}"),
            status,
        );
        ftm.create_time = base_time() + TimeDelta::milliseconds(index);
        ftm.update_time = ftm.create_time;
        batch.push(ftm);
        if batch.len() == 10_000 {
            repository.import(&batch).await.expect("batch");
            batch.clear();
        }
    }
    let all = ListQuery {
        filter: FtmFilter::default(),
        ordering: Ordering::default(),
        after: None,
        limit: 20,
    };
    let first = repository.list(&all).await.expect("page");
    assert_eq!(first.total_size, 100_000);
    assert_eq!(first.ftms.len(), 20);
    assert!(first.has_more);
    assert_eq!(first.ftms[0].ftm_id, "ftm_00000000");
    // A deep page through the cursor.
    let deep = ListQuery {
        after: Some(Cursor {
            time: Some((base_time() + TimeDelta::milliseconds(90_000)).timestamp_micros()),
            text: None,
            ftm_id: "ftm_00090000".into(),
        }),
        ..all.clone()
    };
    let page = repository.list(&deep).await.expect("deep page");
    assert_eq!(page.ftms[0].ftm_id, "ftm_00090001");

    let own = ListQuery {
        filter: FtmFilter {
            partner_id: Some("partner-007".into()),
            ..FtmFilter::default()
        },
        ordering: Ordering {
            field: SortField::UpdateTime,
            descending: true,
        },
        after: None,
        limit: 50,
    };
    let page = repository.list(&own).await.expect("own page");
    assert_eq!(page.total_size, 500);
    assert_eq!(page.ftms.len(), 50);
    assert!(page.ftms.iter().all(|ftm| ftm.partner_id == "partner-007"));
    let pending = ListQuery {
        filter: FtmFilter {
            status: Some("PENDING_APPROVAL".into()),
            ..FtmFilter::default()
        },
        ..all.clone()
    };
    assert_eq!(
        repository.list(&pending).await.expect("pending").total_size,
        20_000
    );
    let search = ListQuery {
        filter: FtmFilter {
            make: Some("make 42".into()),
            ..FtmFilter::default()
        },
        ..all.clone()
    };
    let page = repository.list(&search).await.expect("search");
    assert!(page.total_size > 0);
    assert!(
        page.ftms
            .iter()
            .all(|ftm| search_key(&ftm.make).contains("make 42"))
    );

    let every_order = [
        SortField::CreateTime,
        SortField::UpdateTime,
        SortField::Make,
        SortField::Model,
        SortField::PartnerId,
        SortField::Status,
    ];
    // Every ordering of all FTMs and of one provider's FTMs, and the admin's "pending
    // approvals" queue in creation order.
    for (query, fields) in [
        (&all, &every_order[..]),
        (&deep, &every_order[..1]),
        (&own, &every_order[..]),
        (&pending, &every_order[..1]),
    ] {
        for &field in fields {
            let query = ListQuery {
                ordering: Ordering {
                    field,
                    descending: query.ordering.descending,
                },
                after: None,
                ..query.clone()
            };
            let plan = repository
                .explain_list(&query)
                .await
                .expect("plan")
                .join(" | ");
            assert!(
                plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX"),
                "{field:?}: {plan}"
            );
            assert!(
                !plan.contains("TEMP B-TREE"),
                "{field:?} sorts instead of using an index: {plan}"
            );
        }
    }
}

#[tokio::test]
async fn status_counts_and_markers_feed_the_metrics() {
    for backend in backends() {
        let (_database, repository) = repository(backend).await;
        repository
            .import(&[
                ftm("ftm_1", "p", "a", "1", FtmStatus::Approved),
                ftm("ftm_2", "p", "a", "2", FtmStatus::Approved),
                ftm("ftm_3", "p", "a", "3", FtmStatus::PendingApproval),
            ])
            .await
            .expect("imported");
        let now = domain::now();
        assert!(
            repository
                .acquire_lease("ftm_3", FtmStatus::PendingApproval, "t", now, now)
                .await
                .expect("lease")
        );
        let mut counts = repository.status_counts().await.expect("counts");
        counts.sort_by_key(|(status, _)| status.as_str());
        assert_eq!(
            counts,
            [(FtmStatus::Approved, 2), (FtmStatus::PendingApproval, 1)],
            "{backend}"
        );
        assert_eq!(repository.sync_marker_count().await.expect("markers"), 1);

        let metrics = pmp_common::metrics::Metrics::new("ftm-management").expect("metrics");
        let shared: std::sync::Arc<dyn FtmRepository> = std::sync::Arc::new(repository.clone());
        let reconciled = ftm_management::metrics::register(&metrics, shared).expect("register");
        reconciled.with_label_values(&["repaired"]).inc();
        let text = metrics.render().await;
        for line in [
            r#"pmp_ftms{status="APPROVED",service="ftm-management"} 2"#,
            r#"pmp_ftms{status="PENDING_APPROVAL",service="ftm-management"} 1"#,
            r#"pmp_ftms{status="DEACTIVATED",service="ftm-management"} 0"#,
            r#"pmp_ftm_sync_markers{service="ftm-management"} 1"#,
            r#"pmp_ftm_reconciliations_total{outcome="repaired",service="ftm-management"} 1"#,
        ] {
            assert!(text.contains(line), "{backend}: {line} missing in\n{text}");
        }
    }
}

/// The trust-model migration on FTMs of the first schema: every FTM with a certificate gets
/// an expired synchronisation marker (so the reconciler re-applies its chip's trust, with
/// its partner, at the next start); FTMs without a certificate and FTMs with a step in
/// flight keep what they had; `down` removes exactly the markers it set.
#[tokio::test]
async fn the_trust_model_migration_marks_certified_ftms_for_reconciliation() {
    for backend in backends() {
        let database = TestDatabase::new(backend).await.expect("database");
        Migrator::up(&database.connection, Some(1))
            .await
            .expect("first schema");
        let repository = SqlFtmRepository::new(database.connection.clone());
        repository
            .import(&[
                ftm("ftm_new", "acme", "A", "1", FtmStatus::PendingCertUpload),
                ftm("ftm_pending", "acme", "A", "2", FtmStatus::PendingApproval),
                ftm("ftm_approved", "acme", "A", "3", FtmStatus::Approved),
                ftm("ftm_rejected", "acme", "A", "4", FtmStatus::Rejected),
                ftm("ftm_busy", "acme", "A", "5", FtmStatus::Approved),
            ])
            .await
            .expect("first-schema rows");
        let now = Utc::now();
        assert!(
            repository
                .acquire_lease(
                    "ftm_busy",
                    FtmStatus::Approved,
                    "in-flight",
                    now + TimeDelta::seconds(30),
                    now,
                )
                .await
                .expect("lease")
        );

        Migrator::up(&database.connection, Some(1))
            .await
            .expect("trust model");
        let mut marked: Vec<String> = repository
            .stale_leases(Utc::now(), 100)
            .await
            .expect("query")
            .into_iter()
            .map(|marker| marker.id)
            .collect();
        marked.sort();
        assert_eq!(
            marked,
            ["ftm_approved", "ftm_pending", "ftm_rejected"],
            "{backend}"
        );
        assert_eq!(
            repository
                .sync_marker("ftm_busy")
                .await
                .expect("query")
                .map(|marker| marker.token),
            Some("in-flight".to_owned()),
            "{backend}: a step in flight keeps its lease"
        );

        Migrator::down(&database.connection, Some(1))
            .await
            .expect("down");
        assert!(
            repository
                .stale_leases(Utc::now(), 100)
                .await
                .expect("query")
                .is_empty(),
            "{backend}: the migration's markers are gone"
        );
        assert!(
            repository
                .sync_marker("ftm_busy")
                .await
                .expect("query")
                .is_some(),
            "{backend}"
        );
    }
}

// The outbox of `WatchFtmEvents` (the stream itself: `tests/events.rs`).

/// The chip certificate upload step: PENDING_CERT_UPLOAD to PENDING_APPROVAL with
/// `certificate_id`.
async fn upload(repository: &SqlFtmRepository, id: &str, certificate_id: &str) {
    let now = domain::now();
    let from = FtmStatus::PendingCertUpload;
    assert!(
        repository
            .acquire_lease(id, from, "upload", now + TimeDelta::seconds(30), now)
            .await
            .expect("acquire")
    );
    let change = FtmChange {
        status: FtmStatus::PendingApproval,
        certificate_id: Some(certificate_id.into()),
        certificate_expiry_time: None,
        reject_reason: None,
    };
    let audit = audit("FTM_CERT", id, Some(from), change.status);
    repository
        .complete(id, "upload", from, &change, audit)
        .await
        .expect("complete")
        .expect("applied");
}

#[tokio::test]
async fn each_step_records_its_event_and_refused_steps_none() {
    use FtmStatus::*;
    for backend in backends() {
        let (database, repository) = repository(backend).await;
        let outbox = Outbox::new(database.connection.clone());
        for (id, model) in [("ftm_1", "M1"), ("ftm_2", "M2")] {
            create(
                &repository,
                &ftm(id, "acme", "Chip", model, PendingCertUpload),
            )
            .await
            .expect("created");
        }
        // Refused by the unique index: rolled back, no event.
        let duplicate = ftm("ftm_3", "acme", " chip ", "m1", PendingCertUpload);
        assert!(
            matches!(
                create(&repository, &duplicate).await,
                Err(FtmError::DuplicateMakeModel)
            ),
            "{backend}"
        );
        upload(&repository, "ftm_1", "c1").await;
        // A step that does not hold the lease writes nothing.
        let stale = FtmChange {
            status: Approved,
            certificate_id: Some("c1".into()),
            certificate_expiry_time: None,
            reject_reason: None,
        };
        let written = repository
            .complete(
                "ftm_1",
                "stale",
                PendingApproval,
                &stale,
                audit("FTM_APPROVED", "ftm_1", Some(PendingApproval), Approved),
            )
            .await
            .expect("query");
        assert_eq!(written, None, "{backend}");
        transition(&repository, "ftm_1", PendingApproval, Approved).await;
        transition(&repository, "ftm_1", Approved, Deactivated).await;
        upload(&repository, "ftm_2", "c2").await;
        transition(&repository, "ftm_2", PendingApproval, Rejected).await;

        let events: Vec<(i64, FtmEvent)> = outbox.all_events().await.expect("events");
        let versions: Vec<i64> = events.iter().map(|(version, _)| *version).collect();
        assert_eq!(versions, (1..=7).collect::<Vec<_>>(), "{backend}: dense");
        let Some((_, FtmEvent::Created { ftm: created })) = events.first() else {
            panic!("{backend}: {events:?}");
        };
        assert_eq!(
            (created.ftm_id.as_str(), created.status),
            ("ftm_1", PendingCertUpload)
        );
        let uploaded = |ftm_id: &str, certificate_id: &str| FtmEvent::CertificateUploaded {
            ftm_id: ftm_id.into(),
            certificate_id: certificate_id.into(),
        };
        let later: Vec<FtmEvent> = events[2..].iter().map(|(_, event)| event.clone()).collect();
        assert_eq!(
            later,
            [
                uploaded("ftm_1", "c1"),
                FtmEvent::Approved {
                    ftm_id: "ftm_1".into()
                },
                FtmEvent::Deactivated {
                    ftm_id: "ftm_1".into()
                },
                uploaded("ftm_2", "c2"),
                FtmEvent::Rejected {
                    ftm_id: "ftm_2".into(),
                    reason: "no".into()
                },
            ],
            "{backend}"
        );

        let snapshot = repository.snapshot().await.expect("snapshot");
        assert_eq!(snapshot.version, 7, "{backend}");
        let states: Vec<(&str, FtmStatus)> = snapshot
            .states
            .iter()
            .map(|state| (state.ftm_id.as_str(), state.status))
            .collect();
        assert_eq!(states, [("ftm_1", Deactivated), ("ftm_2", Rejected)]);
    }
}
