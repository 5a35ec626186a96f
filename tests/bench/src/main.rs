//! `pmp-bench`: the platform measured from outside, over gRPC, against the physical limit
//! of each scenario measured in the same run (`make bench`). It starts the release binaries
//! on SQLite (and PostgreSQL when `PMP_TEST_POSTGRES_URL` is set), runs every scenario,
//! prints each figure next to its limit and target, and writes `target/bench/results.json`
//! and `target/bench/results.svg`. `BENCH_SCALE` (default 1) scales durations and sizes;
//! a run with any failed call is invalid and exits non-zero.
//!
//! `BENCH_ONLY` runs some scenario groups instead of all, so that one change can be
//! measured without the whole run: a comma-separated list of substrings, each selecting
//! every group whose name contains it (`BENCH_ONLY=list-partners`, `BENCH_ONLY=list,login`).
//! The groups, in the order they run, are [`GROUPS`]: `startup` (start-up time, idle RSS
//! and RSS after the load), `certificates` (the `Health/Check` limit, onboarding,
//! `VerifyCertificateTrust` cached and distinct: they share the limit and the chips),
//! `login`, `list-ftms` and `list-partners` (each at 100,000 rows). A substring that
//! selects no group is refused, so a typo does not pass for a run.

mod lists;
mod load;
mod report;
mod scenarios;

use std::time::Duration;

use report::Report;

/// How long and how large a run is.
#[derive(Debug, Clone, Copy)]
pub struct Scale(pub f64);

impl Scale {
    /// From `BENCH_SCALE` (default 1).
    fn from_environment() -> Scale {
        let value = std::env::var("BENCH_SCALE")
            .ok()
            .and_then(|value| value.parse::<f64>().ok())
            .filter(|value| *value > 0.0)
            .unwrap_or(1.0);
        Scale(value)
    }

    /// A measured duration: `seconds` at scale 1, never under 200 ms.
    pub fn duration(self, seconds: f64) -> Duration {
        Duration::from_secs_f64((seconds * self.0).max(0.2))
    }

    /// A count: `count` at scale 1, never under `minimum`.
    pub fn count(self, count: usize, minimum: usize) -> usize {
        ((count as f64 * self.0).round() as usize).max(minimum)
    }
}

/// The scenario groups `BENCH_ONLY` chooses from, in the order they run.
pub const GROUPS: [&str; 5] = [
    "startup",
    "certificates",
    "login",
    "list-ftms",
    "list-partners",
];

/// Which scenario groups a run measures.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Substrings of group names; empty: every group.
    patterns: Vec<String>,
}

impl Selection {
    /// From `BENCH_ONLY` (unset or blank: every group); a substring that names no group is
    /// an error.
    fn from_environment() -> anyhow::Result<Selection> {
        let value = std::env::var("BENCH_ONLY").unwrap_or_default();
        let patterns: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|pattern| !pattern.is_empty())
            .map(str::to_owned)
            .collect();
        for pattern in &patterns {
            anyhow::ensure!(
                GROUPS.iter().any(|group| group.contains(pattern.as_str())),
                "BENCH_ONLY: {pattern:?} selects none of the groups {GROUPS:?}"
            );
        }
        Ok(Selection { patterns })
    }

    /// Whether `group` (one of [`GROUPS`]) runs.
    pub fn includes(&self, group: &str) -> bool {
        debug_assert!(GROUPS.contains(&group), "{group} is not in GROUPS");
        self.patterns.is_empty()
            || self
                .patterns
                .iter()
                .any(|pattern| group.contains(pattern.as_str()))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let scale = Scale::from_environment();
    let selection = Selection::from_environment()?;
    let mut report = Report::default();
    let mut backends = vec!["sqlite"];
    if std::env::var("PMP_TEST_POSTGRES_URL").is_ok_and(|url| !url.is_empty()) {
        backends.push("postgres");
    }
    for backend in backends {
        scenarios::run(backend, scale, &selection, &mut report).await?;
    }
    let directory = report::output_directory()?;
    report.print();
    report.write(&directory)?;
    println!(
        "\nresults: {} and {}",
        directory.join("results.json").display(),
        directory.join("results.svg").display()
    );
    if report.has_errors() {
        anyhow::bail!("some calls failed: the run is invalid (see the errors column)");
    }
    Ok(())
}
