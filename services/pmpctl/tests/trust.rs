//! `pmpctl watch trust`, `revoke`, `crl get` and `expiring` against real services: the feed
//! printed live (a snapshot, then the revocation at the version `revoke` reports), the
//! revoked chip no longer trusted, its CRL written as PEM, and the expiry listing.

mod common;

use std::time::Duration;

use common::{Platform, User, arg, dev_certs, eventually};

const ORG: &str = "Trusted Silicon Pvt Ltd";

async fn chip_trusted(user: &User, chip: &str) -> bool {
    user.run(&["verify", chip, "-q"]).await.ok().trim() == "trusted"
}

/// The JSON objects `watch -o json` printed, one per line.
fn lines(output: &str) -> Vec<serde_json::Value> {
    output
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_watches_the_feed_revokes_a_chip_and_publishes_the_crl() {
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
    let ftm_id = provider
        .run(&["ftm", "create", "--make", "TS", "--model", "Chip 1", "-q"])
        .await
        .ok()
        .trim()
        .to_owned();
    let uploaded = provider
        .run(&["ftm", "cert", "upload", &ftm_id, &chip, "-o", "json"])
        .await
        .json();
    let certificate_id = uploaded["certificate_id"].as_str().expect("id").to_owned();
    admin.run(&["ftm", "approve", &ftm_id]).await.ok();
    assert!(
        eventually(Duration::from_secs(10), || chip_trusted(&provider, &chip)).await,
        "approved chip trusted"
    );

    // The feed starts with a snapshot; `--limit` stops it.
    let snapshot = admin
        .run(&[
            "watch", "trust", "--domain", "FTM", "--limit", "1", "-o", "json",
        ])
        .await;
    let snapshot = lines(snapshot.ok());
    assert_eq!(snapshot.len(), 1);
    assert_eq!(snapshot[0]["kind"], "snapshot-end");
    let version = snapshot[0]["version"].as_i64().expect("version");
    assert!(version > 0);
    let table = admin
        .run(&["watch", "trust", "--domain", "FTM", "--limit", "1"])
        .await;
    assert!(table.ok().contains("snapshot-end"), "{}", table.stdout);

    // Only admins revoke; the revocation is on the feed at the version it reports.
    provider
        .run(&["revoke", &certificate_id, "--reason", "key-compromise"])
        .await
        .fails_with(3, &["PERMISSION_DENIED"]);
    let revoked = admin
        .run(&[
            "revoke",
            &certificate_id,
            "--reason",
            "key-compromise",
            "--comment",
            "chip key extracted",
            "-o",
            "json",
        ])
        .await
        .json();
    assert_eq!(revoked["kind"], "FTM_CERTIFICATE");
    assert_eq!(revoked["reason"], "KEY_COMPROMISE");
    let revoked_version = revoked["version"].as_i64().expect("version");
    let resumed = admin
        .run(&[
            "watch",
            "trust",
            "--from-version",
            &version.to_string(),
            "--limit",
            "1",
            "-o",
            "json",
        ])
        .await;
    let resumed = lines(resumed.ok());
    assert_eq!(resumed[0]["kind"], "revoked");
    assert_eq!(resumed[0]["id"], certificate_id.as_str());
    assert_eq!(resumed[0]["reason"], "KEY_COMPROMISE");
    assert_eq!(resumed[0]["version"], revoked_version);
    assert!(!chip_trusted(&provider, &chip).await, "revoked chip");
    admin
        .run(&["revoke", &certificate_id, "--reason", "superseded"])
        .await
        .fails_with(6, &["FAILED_PRECONDITION", "PMS_CERT_REVOKED"]);

    // The CRL, as PEM, lists the chip's platform-signed copy.
    let crl_file = platform.directory.path().join("ftm.crl.pem");
    let crl = admin
        .run(&[
            "crl",
            "get",
            "--domain",
            "ftm",
            "--out",
            &arg(&crl_file),
            "--pem",
            "-o",
            "json",
        ])
        .await
        .json();
    assert_eq!(crl["revoked_count"], 1);
    assert_eq!(crl["partner_domain"], "FTM");
    let written = std::fs::read_to_string(&crl_file).expect("CRL written");
    assert!(written.starts_with("-----BEGIN X509 CRL-----"), "{written}");

    // Expiring: the chip and the partner certificate expire within ten years.
    let expiring = admin
        .run(&[
            "expiring",
            "--within-days",
            "3650",
            "--kind",
            "ftm",
            "-o",
            "json",
        ])
        .await
        .json();
    assert_eq!(expiring["total_size"], 1);
    assert_eq!(
        expiring["certificates"][0]["certificate_id"],
        certificate_id.as_str()
    );
    assert_eq!(expiring["certificates"][0]["owner_id"], ftm_id.as_str());
    let none = admin.run(&["expiring", "--within-days", "1", "-q"]).await;
    assert!(
        none.ok().trim().is_empty(),
        "nothing expires tomorrow: {}",
        none.stdout
    );
}
