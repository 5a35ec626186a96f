//! `pmpctl watch partners` and `pmpctl watch ftms` against the in-process services: one line
//! per message, the snapshot first, exactly the changes after `--from-version`, and a
//! refusal for non-admins.

mod common;

use common::Platform;

/// The JSON objects of a `-o json` watch, one per line.
fn lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_partners_prints_the_snapshot_then_the_changes() {
    let platform = Platform::start_with_ftm().await;
    let admin = platform.user();
    let acme = platform.user();
    admin.become_admin().await;
    acme.become_partner("acme", "ACME Chips Ltd").await;

    let snapshot = admin
        .run(&["watch", "partners", "--limit", "2", "-o", "json"])
        .await;
    let snapshot = lines(snapshot.ok());
    assert_eq!(snapshot.len(), 2, "{snapshot:?}");
    assert_eq!(snapshot[0]["kind"], "snapshot");
    assert_eq!(snapshot[0]["version"], 1);
    assert_eq!(snapshot[0]["id"], "acme");
    assert_eq!(snapshot[0]["status"], "IN_PROGRESS");
    assert_eq!(snapshot[0]["partner_type"], "FTM_Provider");
    assert_eq!(snapshot[0]["organization"], "ACME Chips Ltd");
    assert_eq!(snapshot[1]["kind"], "snapshot-end");

    // The changes after version 1, whether they happen before or while it watches.
    let changes = admin.run(&["watch", "partners", "--from-version", "1", "--limit", "2"]);
    let (changes, ()) = tokio::join!(changes, async {
        platform.user().register("beta", "Beta Ltd").await.ok();
        admin.run(&["partner", "deactivate", "acme"]).await.ok();
    });
    let table: Vec<&str> = changes.ok().lines().collect();
    assert_eq!(table.len(), 2, "{table:?}");
    assert!(table[0].trim_start().starts_with("2 "), "{}", table[0]);
    assert!(
        table[0].contains("registered") && table[0].contains("beta"),
        "{}",
        table[0]
    );
    assert!(table[1].trim_start().starts_with("3 "), "{}", table[1]);
    assert!(
        table[1].contains("deactivated") && table[1].contains("acme"),
        "{}",
        table[1]
    );

    // --quiet prints the versions only.
    let quiet = admin
        .run(&[
            "watch",
            "partners",
            "--from-version",
            "1",
            "--limit",
            "2",
            "-q",
        ])
        .await;
    assert_eq!(quiet.ok(), "2\n3\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_ftms_and_who_may_watch() {
    let platform = Platform::start_with_ftm().await;
    let admin = platform.user();
    admin.become_admin().await;
    let empty = admin
        .run(&["watch", "ftms", "--limit", "1", "-o", "json"])
        .await;
    let empty = lines(empty.ok());
    assert_eq!(empty.len(), 1);
    assert_eq!(empty[0]["kind"], "snapshot-end");
    assert_eq!(empty[0]["version"], 0);

    let partner = platform.user();
    partner.become_partner("acme", "ACME Chips Ltd").await;
    for what in ["partners", "ftms"] {
        partner
            .run(&["watch", what, "--limit", "1"])
            .await
            .fails_with(3, &["PERMISSION_DENIED", "KER-ATH-403"]);
    }
    admin
        .run(&["watch", "partners", "--from-version", "-1"])
        .await
        .fails_with(2, &[]);
}
