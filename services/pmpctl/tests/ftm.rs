//! The `ftm` commands against real registry, certificate store and FTM management services:
//! create, certify, review (approve, reject), deactivate, and the chip certificate's trust
//! following the review.

mod common;

use std::time::Duration;

use common::{Platform, User, arg, dev_certs, eventually};

const ORG: &str = "Trusted Silicon Pvt Ltd";

async fn chip_trusted(user: &User, chip: &str) -> bool {
    user.run(&["verify", chip, "-q"]).await.ok().trim() == "trusted"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftm_review_workflow_drives_chip_trust() {
    let platform = Platform::start_with_ftm().await;
    let admin = platform.user();
    let provider = platform.user();
    let certs = platform.directory.path().join("certs");
    dev_certs(&provider, ORG, &certs).await.ok();
    let chip = arg(&certs.join("ftm-chip.pem"));

    admin.become_admin().await;
    admin
        .run(&["ca", "upload", &arg(&certs.join("ca-bundle.pem"))])
        .await
        .ok();
    provider.become_partner("trusted-silicon", ORG).await;
    provider
        .run(&[
            "partner",
            "cert",
            "upload",
            &arg(&certs.join("partner.pem")),
        ])
        .await
        .ok();

    // Create: --quiet prints the new FTM id.
    let created = provider
        .run(&[
            "ftm", "create", "--make", "TS", "--model", "Chip 1", "--quiet",
        ])
        .await;
    let ftm_id = created.ok().trim().to_owned();
    assert!(!ftm_id.is_empty());
    let shown = provider
        .run(&["ftm", "show", &ftm_id, "-o", "json"])
        .await
        .json();
    assert_eq!(shown["status"], "PENDING_CERT_UPLOAD");
    assert_eq!(shown["partner_id"], "trusted-silicon");
    assert!(shown["certificate_id"].is_null());

    // Duplicate make and model: 6.
    provider
        .run(&["ftm", "create", "--make", "ts", "--model", "chip  1"])
        .await
        .fails_with(6, &["ALREADY_EXISTS PMP_AUT_032"]);

    // Certificate upload: PENDING_APPROVAL; the chip is not trusted before approval.
    let uploaded = provider
        .run(&["ftm", "cert", "upload", &ftm_id, &chip, "-o", "json"])
        .await
        .json();
    assert_eq!(uploaded["status"], "PENDING_APPROVAL");
    let certificate_id = uploaded["certificate_id"].as_str().expect("certificate id");
    let bundle = provider
        .run(&["ftm", "cert", "show", &ftm_id, "-o", "json"])
        .await
        .json();
    assert_eq!(bundle["certificate_id"], certificate_id);
    assert!(!chip_trusted(&provider, &chip).await);

    // Only the admin approves.
    provider
        .run(&["ftm", "approve", &ftm_id])
        .await
        .fails_with(3, &["PERMISSION_DENIED"]);
    let approved = admin.run(&["ftm", "approve", &ftm_id]).await;
    assert!(approved.ok().contains("APPROVED"), "{}", approved.stdout);
    assert!(
        eventually(Duration::from_secs(10), || chip_trusted(&provider, &chip)).await,
        "chip not trusted after approval"
    );

    // Listing as admin, filtered by status.
    let listed = admin
        .run(&["ftm", "list", "--status", "approved", "-o", "json"])
        .await
        .json();
    assert_eq!(listed["total_size"], 1);
    assert_eq!(listed["ftms"][0]["ftm_id"], ftm_id.as_str());
    let table = admin.run(&["ftm", "list"]).await;
    assert!(table.ok().contains(&ftm_id));
    assert!(table.stdout.contains("FTM ID"));

    // Deactivation stops the trust; a second one is a precondition failure.
    let deactivated = provider
        .run(&["ftm", "deactivate", &ftm_id, "-o", "json"])
        .await
        .json();
    assert_eq!(deactivated["status"], "DEACTIVATED");
    assert!(
        eventually(Duration::from_secs(10), || async {
            !chip_trusted(&provider, &chip).await
        })
        .await,
        "chip still trusted after deactivation"
    );
    provider
        .run(&["ftm", "deactivate", &ftm_id])
        .await
        .fails_with(6, &["FAILED_PRECONDITION PMS_FTM_ERROR_007"]);

    // Rejection of a second FTM, with its reason. One certificate has one owner, so the
    // second FTM gets a chip certificate of its own (from a second development PKI).
    let second_certs = platform.directory.path().join("certs-2");
    dev_certs(&provider, ORG, &second_certs).await.ok();
    admin
        .run(&["ca", "upload", &arg(&second_certs.join("ca-bundle.pem"))])
        .await
        .ok();
    let second_chip = arg(&second_certs.join("ftm-chip.pem"));
    provider
        .run(&["ftm", "create", "--make", "TS", "--model", "Chip 0", "-q"])
        .await
        .ok();
    let taken = provider
        .run(&["ftm", "list", "--model", "Chip 0", "-o", "json"])
        .await
        .json();
    let taken = taken["ftms"][0]["ftm_id"].as_str().expect("ftm").to_owned();
    provider
        .run(&["ftm", "cert", "upload", &taken, &chip])
        .await
        .fails_with(6, &["ALREADY_EXISTS KER-PCM-003"]);
    let second = provider
        .run(&["ftm", "create", "--make", "TS", "--model", "Chip 2", "-q"])
        .await
        .ok()
        .trim()
        .to_owned();
    provider
        .run(&["ftm", "cert", "upload", &second, &second_chip])
        .await
        .ok();
    let rejected = admin
        .run(&[
            "ftm",
            "reject",
            &second,
            "--reason",
            "blurry photos",
            "-o",
            "json",
        ])
        .await
        .json();
    assert_eq!(rejected["status"], "REJECTED");
    assert_eq!(rejected["reject_reason"], "blurry photos");

    // Unknown FTM: 4.
    admin
        .run(&["ftm", "show", "no-such-ftm"])
        .await
        .fails_with(4, &["NOT_FOUND PMP_AUT_031"]);
}
