//! How the listing and status commands (`sweep status|list|cancel`, `agents list`) print:
//! a table for people, or JSON lines or CSV for scripts (`--format`).
//!
//! JSON lines are typed: one object per row with a `type` tag naming the listing
//! (`sweep_status`, `sweep`, `agent`), numbers as numbers, lists as arrays, labels as an
//! object, unknown values as `null`. CSV has a header line; lists are joined with `;`.

use std::io::Write;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::Value;

/// `--format` of the listing commands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    #[default]
    Table,
    Json,
    Csv,
}

/// The rows of one listing.
pub struct Listing {
    /// The `type` tag of its JSON lines.
    pub kind: &'static str,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Value>>,
}

impl Listing {
    pub fn print(&self, format: ListFormat, out: &mut impl Write) -> std::io::Result<()> {
        match format {
            ListFormat::Table => writeln!(out, "{}", self.table()),
            ListFormat::Json => {
                for row in &self.rows {
                    let mut object = serde_json::Map::new();
                    object.insert("type".into(), Value::from(self.kind));
                    for (column, value) in self.columns.iter().zip(row) {
                        object.insert((*column).into(), value.clone());
                    }
                    writeln!(out, "{}", Value::Object(object))?;
                }
                Ok(())
            }
            ListFormat::Csv => {
                writeln!(out, "{}", self.columns.join(","))?;
                for row in &self.rows {
                    let cells: Vec<String> = row.iter().map(|v| csv_field(&text(v, ";"))).collect();
                    writeln!(out, "{}", cells.join(","))?;
                }
                Ok(())
            }
        }
    }

    fn table(&self) -> Table {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        t.set_header(self.columns.clone());
        for row in &self.rows {
            t.add_row(row.iter().map(|v| text(v, "\n")).collect::<Vec<_>>());
        }
        t
    }
}

/// A value as text: lists joined with `separator`, objects as `k=v` pairs, null as `-`.
fn text(value: &Value, separator: &str) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(|v| text(v, separator)).collect::<Vec<_>>().join(separator),
        Value::Object(map) => {
            map.iter().map(|(k, v)| format!("{k}={}", text(v, separator))).collect::<Vec<_>>().join(",")
        }
        other => other.to_string(),
    }
}

/// RFC 4180 quoting where a field needs it.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn listing() -> Listing {
        Listing {
            kind: "agent",
            columns: vec!["agent_id", "hardware_classes", "labels", "last_seen_ms_ago"],
            rows: vec![vec![json!("a1"), json!(["cpu/x", "cuda/NVIDIA H100"]), json!({"rack": "b,3"}), json!(null)]],
        }
    }

    fn printed(format: ListFormat) -> String {
        let mut out = Vec::new();
        listing().print(format, &mut out).expect("print");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn json_lines_are_typed_and_csv_is_quoted() {
        expect_test::expect![[r#"
            {"agent_id":"a1","hardware_classes":["cpu/x","cuda/NVIDIA H100"],"labels":{"rack":"b,3"},"last_seen_ms_ago":null,"type":"agent"}
        "#]]
        .assert_eq(&printed(ListFormat::Json));
        expect_test::expect![[r#"
            agent_id,hardware_classes,labels,last_seen_ms_ago
            a1,cpu/x;cuda/NVIDIA H100,"rack=b,3",-
        "#]]
        .assert_eq(&printed(ListFormat::Csv));
        assert!(printed(ListFormat::Table).contains("cuda/NVIDIA H100"));
    }
}
