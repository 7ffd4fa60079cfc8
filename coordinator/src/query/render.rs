//! Rendering query output: a terminal table, CSV, JSON lines, or Markdown. One place
//! for every command that prints rows (`query`, `report`).

use std::io::Write;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use super::QueryOutput;

/// Output formats of row-printing commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Markdown,
}

pub fn write(out: &mut impl Write, rows: &QueryOutput, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Table => writeln!(out, "{}", table(rows)?)?,
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(&mut *out);
            // No rows still prints the header: a script reading the CSV sees the columns.
            let empty = [RecordBatch::new_empty(rows.schema.clone())];
            let batches = if rows.batches.is_empty() { &empty[..] } else { &rows.batches[..] };
            for b in batches {
                w.write(b)?;
            }
        }
        Format::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(&mut *out);
            for b in &rows.batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        Format::Markdown => write!(out, "{}", markdown(rows)?)?,
    }
    Ok(())
}

/// Column names and every cell as display text.
pub fn cells(rows: &QueryOutput) -> anyhow::Result<(Vec<String>, Vec<Vec<String>>)> {
    let header = rows.schema.fields().iter().map(|f| f.name().clone()).collect();
    let opts = FormatOptions::default().with_null("").with_display_error(true);
    let mut body = Vec::with_capacity(rows.n_rows());
    for batch in &rows.batches {
        body.extend(batch_cells(batch, &opts)?);
    }
    Ok((header, body))
}

fn batch_cells(batch: &RecordBatch, opts: &FormatOptions) -> anyhow::Result<Vec<Vec<String>>> {
    let formatters =
        batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), opts)).collect::<Result<Vec<_>, _>>()?;
    Ok((0..batch.num_rows()).map(|i| formatters.iter().map(|f| f.value(i).to_string()).collect()).collect())
}

fn table(rows: &QueryOutput) -> anyhow::Result<Table> {
    let (header, body) = cells(rows)?;
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header);
    for r in body {
        t.add_row(r);
    }
    Ok(t)
}

pub fn markdown(rows: &QueryOutput) -> anyhow::Result<String> {
    let (header, body) = cells(rows)?;
    let esc = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut s = format!("| {} |\n", header.iter().map(|h| esc(h)).collect::<Vec<_>>().join(" | "));
    s.push_str(&format!("|{}\n", " --- |".repeat(header.len())));
    for r in body {
        s.push_str(&format!("| {} |\n", r.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")));
    }
    Ok(s)
}
