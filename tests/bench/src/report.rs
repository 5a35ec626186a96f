//! The results: a table on the terminal, `results.json`, and `results.svg` (each
//! scenario's throughput as a share of its limit, with its p50/p99).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::load::Measured;

/// One figure of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// What was measured.
    pub scenario: String,
    /// The figure.
    pub value: f64,
    /// Its unit (`calls/s`, `ms`, `MiB`, ...).
    pub unit: String,
    /// The limit it is compared with, if any (same unit).
    pub limit: Option<f64>,
    /// What the limit is.
    pub limit_name: String,
    /// The target, as the issue states it.
    pub target: String,
    /// Whether the target is met (`None`: reported only).
    pub met: Option<bool>,
    /// Latency quantiles in ms, for load runs.
    pub p50_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// 99.9th percentile.
    pub p999_ms: Option<f64>,
    /// Failed calls (a run with any is invalid).
    pub errors: u64,
}

impl Row {
    /// A figure without latencies.
    pub fn figure(backend: &str, scenario: &str, value: f64, unit: &str) -> Row {
        Row {
            backend: backend.to_owned(),
            scenario: scenario.to_owned(),
            value,
            unit: unit.to_owned(),
            limit: None,
            limit_name: String::new(),
            target: String::new(),
            met: None,
            p50_ms: None,
            p99_ms: None,
            p999_ms: None,
            errors: 0,
        }
    }

    /// The throughput and latencies of a load run.
    pub fn load(backend: &str, scenario: &str, measured: &Measured) -> Row {
        Row {
            p50_ms: Some(measured.quantile_ms(0.50)),
            p99_ms: Some(measured.quantile_ms(0.99)),
            p999_ms: Some(measured.quantile_ms(0.999)),
            errors: measured.error_count(),
            ..Row::figure(backend, scenario, measured.throughput(), "calls/s")
        }
    }

    /// The same row compared with `limit` (named `name`).
    pub fn against(self, name: &str, limit: f64) -> Row {
        Row {
            limit: Some(limit),
            limit_name: name.to_owned(),
            ..self
        }
    }

    /// The same row with a target and whether it is met.
    pub fn target(self, target: &str, met: bool) -> Row {
        Row {
            target: target.to_owned(),
            met: Some(met),
            ..self
        }
    }

    /// `value / limit`.
    pub fn ratio(&self) -> Option<f64> {
        self.limit
            .filter(|limit| *limit > 0.0)
            .map(|limit| self.value / limit)
    }
}

/// Every row of a run.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// In the order measured.
    pub rows: Vec<Row>,
}

impl Report {
    /// Adds a row and prints it at once (a long run shows progress).
    pub fn push(&mut self, row: Row) {
        println!("{}", line(&row));
        self.rows.push(row);
    }

    /// Whether any run had failed calls.
    pub fn has_errors(&self) -> bool {
        self.rows.iter().any(|row| row.errors > 0)
    }

    /// The table.
    pub fn print(&self) {
        println!("\n{}", header());
        for row in &self.rows {
            println!("{}", line(row));
        }
    }

    /// `results.json` and `results.svg` in `directory`.
    pub fn write(&self, directory: &Path) -> anyhow::Result<()> {
        std::fs::write(
            directory.join("results.json"),
            serde_json::to_string_pretty(self)?,
        )?;
        std::fs::write(directory.join("results.svg"), self.svg())?;
        Ok(())
    }

    fn svg(&self) -> String {
        let rows: Vec<&Row> = self.rows.iter().filter(|row| row.limit.is_some()).collect();
        let row_height = 34;
        let width = 980;
        let bar_left = 430;
        let bar_width = 360.0;
        let height = 60 + row_height * rows.len();
        let mut svg = format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="15" font-weight="bold">pmp-bench: each figure as a share of its limit (same run), with p50 / p99</text>
<line x1="{x1}" y1="34" x2="{x1}" y2="{y2}" stroke="#999" stroke-dasharray="4 3"/>
<text x="{x1}" y="46" text-anchor="middle" fill="#555">1.0 × limit</text>
"##,
            x1 = bar_left as f64 + bar_width / 1.5,
            y2 = height - 6,
        );
        for (index, row) in rows.iter().enumerate() {
            let y = 56 + row_height * index;
            let ratio = row.ratio().unwrap_or(0.0);
            let length = (ratio.min(1.5) / 1.5) * bar_width;
            let colour = match row.met {
                Some(true) => "#2e7d32",
                Some(false) => "#c62828",
                None => "#1565c0",
            };
            let latency = match (row.p50_ms, row.p99_ms) {
                (Some(p50), Some(p99)) => format!("p50 {p50:.2} ms · p99 {p99:.2} ms"),
                _ => String::new(),
            };
            let _ = write!(
                svg,
                r#"<text x="10" y="{text_y}">{backend} · {scenario}</text>
<rect x="{bar_left}" y="{y}" width="{length:.1}" height="18" fill="{colour}"/>
<text x="{label_x:.1}" y="{text_y}">{ratio:.2}× ({value:.0} {unit}) {latency}</text>
"#,
                text_y = y + 13,
                backend = row.backend,
                scenario = escape(&row.scenario),
                label_x = bar_left as f64 + length + 6.0,
                value = row.value,
                unit = escape(&row.unit),
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

fn header() -> String {
    format!(
        "{:<8} {:<58} {:>12} {:<8} {:>10} {:>7} {:>8} {:>8} {:>8} {:>6} {:<5} {}",
        "backend",
        "scenario",
        "value",
        "unit",
        "limit",
        "ratio",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "errors",
        "met",
        "target"
    )
}

fn line(row: &Row) -> String {
    let optional = |value: Option<f64>, digits: usize| {
        value.map_or_else(|| "-".to_owned(), |value| format!("{value:.digits$}"))
    };
    format!(
        "{:<8} {:<58} {:>12.1} {:<8} {:>10} {:>7} {:>8} {:>8} {:>8} {:>6} {:<5} {}",
        row.backend,
        row.scenario,
        row.value,
        row.unit,
        optional(row.limit, 0),
        optional(row.ratio(), 2),
        optional(row.p50_ms, 2),
        optional(row.p99_ms, 2),
        optional(row.p999_ms, 2),
        row.errors,
        match row.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        },
        if row.limit_name.is_empty() {
            row.target.clone()
        } else {
            format!("{} (limit: {})", row.target, row.limit_name)
        }
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `PMP_BENCH_OUTPUT`, else `target/bench` of this workspace (created).
pub fn output_directory() -> anyhow::Result<PathBuf> {
    let directory = match std::env::var_os("PMP_BENCH_OUTPUT") {
        Some(directory) => PathBuf::from(directory),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
            .join("bench"),
    };
    std::fs::create_dir_all(&directory)?;
    Ok(directory)
}
