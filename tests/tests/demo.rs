//! `make demo` (deploy/local/demo.sh) against three real service processes: the seed
//! workflow driven by pmpctl completes, and the chip certificate ends up trusted.

use pmp_e2e::{ADMIN_PASSWORD, Platform, binary_directory};

#[tokio::test]
async fn demo_script_runs_the_seed_workflow_with_pmpctl() {
    let platform = Platform::start("sqlite").await.expect("platform");
    let repository = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pmpctl = binary_directory().expect("binaries").join("pmpctl");
    let demo_directory = platform.directory.path().join("demo");
    let output = tokio::process::Command::new("bash")
        .arg(repository.join("deploy/local/demo.sh"))
        .env("PMPCTL", &pmpctl)
        .env("PMPCTL_REGISTRY", &platform.registry.address)
        .env("PMPCTL_CERTSTORE", &platform.certstore.address)
        .env("PMPCTL_FTM", &platform.ftm.address)
        .env("PMP_REGISTRY__ADMIN__PASSWORD", ADMIN_PASSWORD)
        .env("DEMO_DIR", &demo_directory)
        .output()
        .await
        .expect("demo ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed: {}\n{stdout}\n{stderr}",
        output.status
    );
    // Table columns are aligned with runs of spaces: compare with single spaces.
    let text = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for expected in [
        "STATUS ACTIVE",
        "STATUS PENDING_APPROVAL",
        "STATUS APPROVED",
        "TRUSTED no",
        "TRUSTED yes",
        "Demo complete",
    ] {
        assert!(
            text.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    let untrusted = text.find("TRUSTED no").expect("untrusted");
    let trusted = text.find("TRUSTED yes").expect("trusted");
    assert!(
        untrusted < trusted,
        "untrusted before approval, trusted after"
    );
}
