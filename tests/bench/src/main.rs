//! `pmp-bench`: the platform measured from outside, over gRPC, against the physical limit
//! of each scenario measured in the same run (`make bench`). It starts the release binaries
//! on SQLite (and PostgreSQL when `PMP_TEST_POSTGRES_URL` is set), runs every scenario,
//! prints each figure next to its limit and target, and writes `target/bench/results.json`
//! and `target/bench/results.svg`. `BENCH_SCALE` (default 1) scales durations and sizes;
//! a run with any failed call is invalid and exits non-zero.

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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let scale = Scale::from_environment();
    let mut report = Report::default();
    let mut backends = vec!["sqlite"];
    if std::env::var("PMP_TEST_POSTGRES_URL").is_ok_and(|url| !url.is_empty()) {
        backends.push("postgres");
    }
    for backend in backends {
        scenarios::run(backend, scale, &mut report).await?;
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
