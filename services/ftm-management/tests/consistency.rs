//! The failure points of the steps that span the certificate store: the store down before
//! the call, the store failing after it applied a change (the reply is lost), and the FTM
//! database failing after the store call. In every case the caller gets UNAVAILABLE, a retry
//! of the same request completes the step, reconciliation repairs what a failed step left
//! behind, and no certificate stays trusted while its FTM is not APPROVED.

mod common;

use std::time::Duration;

use tonic::Code;

use common::failing::failing;
use common::fake_store::{Fault, SET_TRUSTED, UPLOAD, chip_certificate};
use common::{Options, Platform, StoreChoice, UNREACHABLE, org_of, status_of};
use ftm_management::domain::{self, Ftm, FtmStatus};
use ftm_management::reconcile::ReconcileReport;
use ftm_management::storage::FtmRepository;
use pmp_common::testing::assert_error;
use pmp_common::testing::eventually;

/// A provider with an FTM that went through upload (and approval when `approved`).
async fn ftm_with_certificate(platform: &Platform, approved: bool) -> (String, Ftm) {
    let acme = platform.provider("acme").await;
    let admin = platform.admin_token().await;
    let created = platform
        .create(&acme, "acme", "Chip", "M1")
        .await
        .expect("created");
    platform
        .upload(
            Some(&acme),
            &created.ftm_id,
            &chip_certificate("first", &org_of("acme")),
        )
        .await
        .expect("uploaded");
    if approved {
        platform
            .approve(Some(&admin), &created.ftm_id)
            .await
            .expect("approved");
    }
    (admin, platform.stored(&created.ftm_id).await)
}

#[tokio::test]
async fn store_down_before_the_call_changes_nothing() {
    let platform = Platform::start_with(Options {
        store: StoreChoice::Address(UNREACHABLE.into()),
        ..Options::default()
    })
    .await;
    let acme = platform.provider("acme").await;
    let admin = platform.admin_token().await;
    let imported: Vec<Ftm> = [
        FtmStatus::PendingCertUpload,
        FtmStatus::PendingApproval,
        FtmStatus::PendingApproval,
        FtmStatus::Approved,
        FtmStatus::Approved,
    ]
    .into_iter()
    .enumerate()
    .map(|(index, status)| {
        let now = domain::now();
        let ftm_id = domain::new_ftm_id();
        Ftm {
            certificate_id: (status != FtmStatus::PendingCertUpload)
                .then(|| format!("{ftm_id}-cert")),
            ftm_id,
            partner_id: "acme".into(),
            organization_name: org_of("acme"),
            make: format!("Chip {index}"),
            model: "M".into(),
            status,
            certificate_expiry_time: None,
            reject_reason: None,
            create_time: now,
            update_time: now,
        }
    })
    .collect();
    platform
        .repository
        .import(&imported)
        .await
        .expect("imported");
    let certificate = chip_certificate("c", &org_of("acme"));
    let attempts = [
        platform
            .upload(Some(&acme), &imported[0].ftm_id, &certificate)
            .await,
        platform.approve(Some(&admin), &imported[1].ftm_id).await,
        platform
            .reject(Some(&admin), &imported[2].ftm_id, "no")
            .await,
        platform.deactivate(Some(&acme), &imported[3].ftm_id).await,
        platform
            .upload(Some(&acme), &imported[4].ftm_id, &certificate)
            .await,
    ];
    for (attempt, before) in attempts.into_iter().zip(&imported) {
        let status = attempt.expect_err("store is down");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(
            !status.message().contains("127.0.0.1"),
            "no internals: {}",
            status.message()
        );
        assert_eq!(&platform.stored(&before.ftm_id).await, before, "unchanged");
        assert!(platform.audit_actions(&before.ftm_id).await.is_empty());
    }
    let bundle = platform
        .certificate(Some(&acme), &imported[3].ftm_id)
        .await
        .expect_err("store is down");
    assert_eq!(bundle.code(), Code::Unavailable);
}

#[tokio::test]
async fn upload_stored_but_reply_lost_is_completed_by_the_retry() {
    let platform = Platform::start().await;
    let acme = platform.provider("acme").await;
    let ftm = platform
        .create(&acme, "acme", "Chip", "M1")
        .await
        .expect("created");
    let certificate = chip_certificate("one", &org_of("acme"));
    platform
        .store()
        .fail_next(UPLOAD, Fault::UnavailableAfterApplying);
    assert_error(
        platform
            .upload(Some(&acme), &ftm.ftm_id, &certificate)
            .await,
        Code::Unavailable,
        "PMS_UNAVAILABLE",
    );
    let stored_ids = platform.store().certificates_of(&ftm.ftm_id);
    assert_eq!(stored_ids.len(), 1, "the store kept it");
    assert_eq!(platform.store().trusted(&stored_ids[0]), Some(false));
    let unchanged = platform.stored(&ftm.ftm_id).await;
    assert_eq!(unchanged.status, FtmStatus::PendingCertUpload);
    assert_eq!(unchanged.certificate_id, None);
    assert_eq!(platform.audit_actions(&ftm.ftm_id).await, ["FTM_CREATED"]);

    let retried = platform
        .upload(Some(&acme), &ftm.ftm_id, &certificate)
        .await
        .expect("retry completes");
    assert_eq!(status_of(&retried), FtmStatus::PendingApproval);
    assert_eq!(
        retried.certificate_id, stored_ids[0],
        "the same certificate"
    );
    assert_eq!(platform.store().certificates_of(&ftm.ftm_id).len(), 1);
    assert_eq!(
        platform.audit_actions(&ftm.ftm_id).await,
        ["FTM_CREATED", "FTM_CERTIFICATE_UPLOADED"]
    );
    platform.assert_trust_matches_status().await;
}

#[tokio::test]
async fn approval_trusted_but_reply_lost_is_completed_by_the_retry() {
    let platform = Platform::start().await;
    let (admin, ftm) = ftm_with_certificate(&platform, false).await;
    let certificate_id = ftm.certificate_id.clone().expect("certificate");
    platform
        .store()
        .fail_next(SET_TRUSTED, Fault::UnavailableAfterApplying);
    assert_error(
        platform.approve(Some(&admin), &ftm.ftm_id).await,
        Code::Unavailable,
        "PMS_UNAVAILABLE",
    );
    // The window the design allows: the store applied the trust, the FTM is not APPROVED,
    // and a marker tells the reconciler so.
    assert_eq!(
        platform.stored(&ftm.ftm_id).await.status,
        FtmStatus::PendingApproval
    );
    assert_eq!(platform.store().trusted(&certificate_id), Some(true));
    assert!(
        platform
            .repository
            .sync_marker(&ftm.ftm_id)
            .await
            .expect("marker")
            .is_some()
    );

    let approved = platform
        .approve(Some(&admin), &ftm.ftm_id)
        .await
        .expect("retry completes");
    assert_eq!(status_of(&approved), FtmStatus::Approved);
    assert_eq!(
        platform
            .repository
            .sync_marker(&ftm.ftm_id)
            .await
            .expect("marker"),
        None
    );
    assert_eq!(
        platform.audit_actions(&ftm.ftm_id).await,
        ["FTM_CREATED", "FTM_CERTIFICATE_UPLOADED", "FTM_APPROVED"]
    );
    platform.assert_trust_matches_status().await;
}

#[tokio::test]
async fn approval_trusted_but_reply_lost_is_undone_by_reconciliation() {
    let platform = Platform::start().await;
    let (admin, ftm) = ftm_with_certificate(&platform, false).await;
    let certificate_id = ftm.certificate_id.clone().expect("certificate");
    platform
        .store()
        .fail_next(SET_TRUSTED, Fault::UnavailableAfterApplying);
    platform
        .approve(Some(&admin), &ftm.ftm_id)
        .await
        .expect_err("reply lost");
    assert_eq!(platform.store().trusted(&certificate_id), Some(true));

    let report = platform.reconciler().run_once().await.expect("pass");
    assert_eq!(report.repaired, 1);
    assert_eq!(
        platform.store().trusted(&certificate_id),
        Some(false),
        "untrusted again"
    );
    assert_eq!(
        platform
            .repository
            .sync_marker(&ftm.ftm_id)
            .await
            .expect("marker"),
        None
    );
    assert_eq!(
        platform.stored(&ftm.ftm_id).await.status,
        FtmStatus::PendingApproval
    );
    platform.assert_trust_matches_status().await;
    let again = platform.reconciler().run_once().await.expect("pass");
    assert_eq!(again, ReconcileReport::default(), "nothing left to do");
    // The admin can still approve normally.
    platform
        .approve(Some(&admin), &ftm.ftm_id)
        .await
        .expect("approved");
    assert_eq!(platform.store().trusted(&certificate_id), Some(true));
    platform.assert_trust_matches_status().await;
}

#[tokio::test]
async fn approval_whose_local_write_fails_is_completed_by_retry_or_undone_by_reconciliation() {
    let (wrapper, failures) = failing();
    let platform = Platform::start_with(Options {
        wrapper: Some(wrapper),
        ..Options::default()
    })
    .await;
    let (admin, ftm) = ftm_with_certificate(&platform, false).await;
    let certificate_id = ftm.certificate_id.clone().expect("certificate");

    failures.fail_complete(1);
    let failed = platform
        .approve(Some(&admin), &ftm.ftm_id)
        .await
        .expect_err("database failed");
    assert_eq!(failed.code(), Code::Unavailable, "{failed:?}");
    assert_eq!(
        platform.stored(&ftm.ftm_id).await.status,
        FtmStatus::PendingApproval
    );
    assert_eq!(platform.store().trusted(&certificate_id), Some(true));
    assert!(
        platform
            .repository
            .sync_marker(&ftm.ftm_id)
            .await
            .expect("marker")
            .is_some()
    );
    assert_eq!(
        platform.audit_actions(&ftm.ftm_id).await,
        ["FTM_CREATED", "FTM_CERTIFICATE_UPLOADED"],
        "no audit row without the change"
    );
    // Reconciliation makes the store agree with the recorded status...
    platform.reconciler().run_once().await.expect("pass");
    assert_eq!(platform.store().trusted(&certificate_id), Some(false));
    platform.assert_trust_matches_status().await;

    // ...and a retry (after another failed write) completes the approval.
    failures.fail_complete(1);
    platform
        .approve(Some(&admin), &ftm.ftm_id)
        .await
        .expect_err("database failed again");
    let approved = platform
        .approve(Some(&admin), &ftm.ftm_id)
        .await
        .expect("retry completes");
    assert_eq!(status_of(&approved), FtmStatus::Approved);
    assert_eq!(platform.store().trusted(&certificate_id), Some(true));
    assert_eq!(
        platform
            .repository
            .sync_marker(&ftm.ftm_id)
            .await
            .expect("marker"),
        None
    );
    platform.assert_trust_matches_status().await;
}

#[tokio::test]
async fn deactivation_and_rejection_untrust_first_so_failures_are_safe() {
    let (wrapper, failures) = failing();
    let platform = Platform::start_with(Options {
        wrapper: Some(wrapper),
        ..Options::default()
    })
    .await;
    let (admin, approved) = ftm_with_certificate(&platform, true).await;
    let certificate_id = approved.certificate_id.clone().expect("certificate");
    let acme = platform.login("acme", common::PARTNER_PASSWORD).await;

    // The local write fails after the store untrusted the certificate: APPROVED but not
    // trusted — safe — until the retry deactivates it.
    failures.fail_complete(1);
    platform
        .deactivate(Some(&acme), &approved.ftm_id)
        .await
        .expect_err("database failed");
    assert_eq!(
        platform.stored(&approved.ftm_id).await.status,
        FtmStatus::Approved
    );
    assert_eq!(platform.store().trusted(&certificate_id), Some(false));
    platform.assert_trust_matches_status().await;
    // Reconciliation restores the trust of the (still) APPROVED FTM...
    platform.reconciler().run_once().await.expect("pass");
    assert_eq!(platform.store().trusted(&certificate_id), Some(true));
    // ...and the retried deactivation completes.
    let deactivated = platform
        .deactivate(Some(&acme), &approved.ftm_id)
        .await
        .expect("retry completes");
    assert_eq!(status_of(&deactivated), FtmStatus::Deactivated);
    assert_eq!(platform.store().trusted(&certificate_id), Some(false));

    // Rejection whose store reply is lost, then retried.
    let pending = platform
        .create(&acme, "acme", "Chip", "M2")
        .await
        .expect("created");
    let pending = platform
        .upload(
            Some(&acme),
            &pending.ftm_id,
            &chip_certificate("second", &org_of("acme")),
        )
        .await
        .expect("uploaded");
    platform
        .store()
        .fail_next(SET_TRUSTED, Fault::UnavailableAfterApplying);
    assert_error(
        platform.reject(Some(&admin), &pending.ftm_id, "no").await,
        Code::Unavailable,
        "PMS_UNAVAILABLE",
    );
    assert_eq!(
        platform.stored(&pending.ftm_id).await.status,
        FtmStatus::PendingApproval
    );
    let rejected = platform
        .reject(Some(&admin), &pending.ftm_id, "no")
        .await
        .expect("retry completes");
    assert_eq!(status_of(&rejected), FtmStatus::Rejected);
    assert_eq!(
        platform.store().trusted(&pending.certificate_id),
        Some(false)
    );
    platform.assert_trust_matches_status().await;
}

#[tokio::test]
async fn renewal_that_fails_after_untrusting_the_old_certificate() {
    let platform = Platform::start().await;
    let (admin, approved) = ftm_with_certificate(&platform, true).await;
    let acme = platform.login("acme", common::PARTNER_PASSWORD).await;
    let old = approved.certificate_id.clone().expect("certificate");
    let renewal = chip_certificate("renewal", &org_of("acme"));
    platform
        .store()
        .fail_next(SET_TRUSTED, Fault::UnavailableAfterApplying);
    assert_error(
        platform
            .upload(Some(&acme), &approved.ftm_id, &renewal)
            .await,
        Code::Unavailable,
        "PMS_UNAVAILABLE",
    );
    // Still APPROVED with the old certificate, which is no longer trusted: safe.
    let stored = platform.stored(&approved.ftm_id).await;
    assert_eq!(stored.status, FtmStatus::Approved);
    assert_eq!(stored.certificate_id.as_deref(), Some(old.as_str()));
    assert_eq!(platform.store().trusted(&old), Some(false));
    platform.assert_trust_matches_status().await;
    // Reconciliation re-trusts the certificate of the APPROVED FTM.
    platform.reconciler().run_once().await.expect("pass");
    assert_eq!(platform.store().trusted(&old), Some(true));
    // The retried renewal completes with the certificate the store already holds.
    let stored_ids = platform.store().certificates_of(&approved.ftm_id);
    assert_eq!(stored_ids.len(), 2);
    let renewed = platform
        .upload(Some(&acme), &approved.ftm_id, &renewal)
        .await
        .expect("retry completes");
    assert_eq!(status_of(&renewed), FtmStatus::PendingApproval);
    assert!(stored_ids.contains(&renewed.certificate_id));
    assert_eq!(platform.store().certificates_of(&approved.ftm_id).len(), 2);
    assert_eq!(platform.store().trusted(&old), Some(false));
    assert_eq!(
        platform.store().trusted(&renewed.certificate_id),
        Some(false)
    );
    platform.assert_trust_matches_status().await;
    platform
        .approve(Some(&admin), &approved.ftm_id)
        .await
        .expect("approved");
    platform.assert_trust_matches_status().await;
}

/// The database is gone for good after the store call (as if the process crashed): the
/// lease stays live until it expires, a retry meanwhile is answered UNAVAILABLE, and after
/// expiry reconciliation repairs the store and the retry completes.
#[tokio::test]
async fn a_crashed_step_is_repaired_after_its_lease_expires() {
    let (wrapper, failures) = failing();
    let platform = Platform::start_with(Options {
        wrapper: Some(wrapper),
        adjust: Some(Box::new(|settings| {
            settings.certificate_store.deadline_ms = 1000;
            settings.consistency.lease_seconds = 3;
            settings.consistency.lease_wait_ms = 300;
        })),
        ..Options::default()
    })
    .await;
    let (admin, ftm) = ftm_with_certificate(&platform, false).await;
    let certificate_id = ftm.certificate_id.clone().expect("certificate");
    failures.fail_complete(1);
    failures.fail_end_lease(1);
    platform
        .approve(Some(&admin), &ftm.ftm_id)
        .await
        .expect_err("database failed");
    assert_eq!(platform.store().trusted(&certificate_id), Some(true));
    assert_error(
        platform.approve(Some(&admin), &ftm.ftm_id).await,
        Code::Unavailable,
        "PMS_UNAVAILABLE",
    );
    assert_eq!(
        platform.reconciler().run_once().await.expect("pass"),
        ReconcileReport::default(),
        "a live lease is left alone"
    );
    platform
        .clock
        .advance(platform.lease + Duration::from_secs(1));
    let report = platform.reconciler().run_once().await.expect("pass");
    assert_eq!(report.repaired, 1);
    assert_eq!(platform.store().trusted(&certificate_id), Some(false));
    platform.assert_trust_matches_status().await;
    platform
        .approve(Some(&admin), &ftm.ftm_id)
        .await
        .expect("retry completes");
    platform.assert_trust_matches_status().await;
}

#[tokio::test]
async fn the_service_reconciles_in_the_background() {
    let platform = Platform::start_with(Options {
        adjust: Some(Box::new(|settings| {
            settings.consistency.reconcile_interval_seconds = 1;
        })),
        ..Options::default()
    })
    .await;
    let (admin, ftm) = ftm_with_certificate(&platform, false).await;
    let certificate_id = ftm.certificate_id.clone().expect("certificate");
    platform
        .store()
        .fail_next(SET_TRUSTED, Fault::UnavailableAfterApplying);
    platform
        .approve(Some(&admin), &ftm.ftm_id)
        .await
        .expect_err("reply lost");
    let store = platform.store().clone();
    assert!(
        eventually(Duration::from_secs(10), || async {
            store.trusted(&certificate_id) == Some(false)
        })
        .await,
        "the background pass untrusted the certificate"
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            platform
                .repository
                .sync_marker(&ftm.ftm_id)
                .await
                .expect("marker")
                .is_none()
        })
        .await,
        "the marker was removed"
    );
    platform.assert_trust_matches_status().await;
}

#[tokio::test]
async fn the_client_stack_retries_an_unavailable_store_within_the_deadline() {
    let platform = Platform::start_with(Options {
        adjust: Some(Box::new(|settings| {
            settings.certificate_store.retry_attempts = 3;
        })),
        ..Options::default()
    })
    .await;
    let acme = platform.provider("acme").await;
    let ftm = platform
        .create(&acme, "acme", "Chip", "M1")
        .await
        .expect("created");
    let certificate = chip_certificate("one", &org_of("acme"));
    // The reply of the first attempt is lost: the retry finds the certificate stored and
    // the upload completes in one call.
    platform
        .store()
        .fail_next(UPLOAD, Fault::UnavailableAfterApplying);
    let uploaded = platform
        .upload(Some(&acme), &ftm.ftm_id, &certificate)
        .await
        .expect("retried");
    assert_eq!(status_of(&uploaded), FtmStatus::PendingApproval);
    assert_eq!(platform.store().certificates_of(&ftm.ftm_id).len(), 1);

    // Unavailable on every attempt: the caller gets UNAVAILABLE, nothing changed.
    let second = platform
        .create(&acme, "acme", "Chip", "M2")
        .await
        .expect("created");
    for _ in 0..3 {
        platform.store().fail_next(UPLOAD, Fault::Unavailable);
    }
    assert_error(
        platform
            .upload(
                Some(&acme),
                &second.ftm_id,
                &chip_certificate("two", &org_of("acme")),
            )
            .await,
        Code::Unavailable,
        "PMS_UNAVAILABLE",
    );
    assert!(platform.store().certificates_of(&second.ftm_id).is_empty());
    platform.assert_trust_matches_status().await;
}
