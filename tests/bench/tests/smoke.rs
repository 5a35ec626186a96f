//! `pmp-bench` at a tiny scale, on the debug binaries: every scenario runs to the end and no
//! call fails. Timings are not judged here (they belong to `make bench`).

use std::process::Command;

#[test]
fn the_benchmark_completes_without_errors_at_a_tiny_scale() {
    let binaries = pmp_e2e::binary_directory().expect("service binaries");
    let output_directory = tempfile::tempdir().expect("directory");
    let output = Command::new(env!("CARGO_BIN_EXE_pmp-bench"))
        .env("BENCH_SCALE", "0.02")
        .env("PMP_BIN_DIR", &binaries)
        .env("PMP_BENCH_OUTPUT", output_directory.path())
        .output()
        .expect("pmp-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "pmp-bench failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    for scenario in [
        "Health/Check",
        "onboarding",
        "VerifyCertificateTrust cached",
        "VerifyCertificateTrust distinct, RSA-2048",
        "VerifyCertificateTrust distinct, P-256",
        "Login",
        "idle RSS",
        "ListFtms at",
        "ListPartners at",
    ] {
        assert!(stdout.contains(scenario), "{scenario} missing:\n{stdout}");
    }
    let results = std::fs::read_to_string(output_directory.path().join("results.json"))
        .expect("results.json");
    let parsed: serde_json::Value = serde_json::from_str(&results).expect("JSON");
    let rows = parsed["rows"].as_array().expect("rows");
    assert!(rows.iter().all(|row| row["errors"] == 0), "{results}");
    assert!(output_directory.path().join("results.svg").exists());
}
