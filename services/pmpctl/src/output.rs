//! What a command prints: an aligned table for people, a stable JSON document for scripts,
//! or only ids (`--quiet`) for `$(...)` in shell scripts.

use serde::Serialize;

use crate::failure::CliError;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned, human-readable tables.
    Table,
    /// One JSON document per command (stable field names, enums by name, RFC 3339 times).
    Json,
}

/// How the result of this invocation is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    Table,
    Json,
    Quiet,
}

impl OutputMode {
    /// `--quiet` wins over the (default) table format; clap refuses it with `--output`.
    pub fn new(format: OutputFormat, quiet: bool) -> Self {
        match (format, quiet) {
            (_, true) => OutputMode::Quiet,
            (OutputFormat::Table, false) => OutputMode::Table,
            (OutputFormat::Json, false) => OutputMode::Json,
        }
    }
}

/// The three renderings of one command's result; [`Outcome::print`] picks one.
#[derive(Debug)]
pub struct Outcome {
    json: String,
    text: String,
    ids: Vec<String>,
    failure: Option<CliError>,
}

impl Outcome {
    /// Builds an outcome from the JSON view, the human text and the ids for `--quiet`.
    pub fn new(view: &impl Serialize, text: String, ids: Vec<String>) -> Result<Self, CliError> {
        // Straight from the view (not through `serde_json::Value`) so that fields keep the
        // order of the view's declaration instead of being sorted.
        let json = serde_json::to_string_pretty(view)
            .map_err(|error| CliError::Local(anyhow::anyhow!("cannot encode output: {error}")))?;
        Ok(Outcome {
            json,
            text,
            ids,
            failure: None,
        })
    }

    /// Nothing more to print (a command that printed its result as it went, like `watch`).
    pub fn empty() -> Self {
        Outcome {
            json: String::new(),
            text: String::new(),
            ids: Vec::new(),
            failure: None,
        }
    }

    /// Marks the outcome as a refusal: it is printed, then `error` decides the exit code
    /// (e.g. a CA bundle of which the store kept nothing).
    pub fn failing(mut self, error: CliError) -> Self {
        self.failure = Some(error);
        self
    }

    /// Prints the outcome in `mode`, then returns the failure it carries, if any.
    pub fn finish(self, mode: OutputMode) -> Result<(), CliError> {
        self.print(mode)?;
        match self.failure {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Writes the chosen rendering to stdout.
    pub fn print(&self, mode: OutputMode) -> Result<(), CliError> {
        let rendered = match mode {
            OutputMode::Table => self.text.clone(),
            OutputMode::Json => self.json.clone(),
            OutputMode::Quiet => self.ids.join("\n"),
        };
        if rendered.is_empty() {
            return Ok(());
        }
        if rendered.ends_with('\n') {
            print!("{rendered}");
        } else {
            println!("{rendered}");
        }
        Ok(())
    }
}

/// A tiny aligned-table printer: columns padded to their widest cell, two spaces apart,
/// with an optional header row. New lines inside cells become spaces so rows stay aligned.
#[derive(Debug, Default)]
pub struct Table {
    header: Option<Vec<String>>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with a header row.
    pub fn with_header(header: &[&str]) -> Self {
        Table {
            header: Some(header.iter().map(|cell| (*cell).to_owned()).collect()),
            rows: Vec::new(),
        }
    }

    /// A two-column "FIELD  value" table describing one record.
    pub fn fields(pairs: Vec<(&str, String)>) -> Self {
        let mut table = Table::default();
        for (name, value) in pairs {
            table.push(vec![name.to_owned(), value]);
        }
        table
    }

    /// Appends a row.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// The table as text, one line per row, each ending with a new line.
    pub fn render(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .header
            .iter()
            .chain(self.rows.iter())
            .map(|row| row.iter().map(|cell| single_line(cell)).collect())
            .collect();
        let widths = column_widths(&rows);
        let mut out = String::new();
        for row in &rows {
            let mut line = String::new();
            for (index, cell) in row.iter().enumerate() {
                if index > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let padding = widths[index].saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', padding));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

fn single_line(cell: &str) -> String {
    cell.replace(['\r', '\n', '\t'], " ")
}

fn column_widths(rows: &[Vec<String>]) -> Vec<usize> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    (0..columns)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// `-` for an empty value, so that empty cells stay visible in a table.
pub fn or_dash(value: &str) -> String {
    if value.is_empty() {
        "-".to_owned()
    } else {
        value.to_owned()
    }
}

/// `-` for an absent optional value.
pub fn option_or_dash(value: Option<&str>) -> String {
    value.map_or_else(|| "-".to_owned(), or_dash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_and_lines_trimmed() {
        let mut table = Table::with_header(&["ID", "STATUS"]);
        table.push(vec!["a-long-id".into(), "ACTIVE".into()]);
        table.push(vec!["b".into(), "".into()]);
        assert_eq!(table.render(), "ID         STATUS\na-long-id  ACTIVE\nb\n",);
    }

    #[test]
    fn cells_with_new_lines_stay_on_one_line() {
        let table = Table::fields(vec![("NAME", "two\nlines".into())]);
        assert_eq!(table.render(), "NAME  two lines\n");
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let mut table = Table::with_header(&["ORG", "X"]);
        table.push(vec!["Zürich".into(), "1".into()]);
        assert_eq!(table.render(), "ORG     X\nZürich  1\n");
    }
}
