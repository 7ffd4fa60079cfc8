//! `accelbench import PATH…`: result JSON lines written by `accelbench-agent bench
//! --json/--out`, and the legacy Python framework's benchmark JSON.
//!
//! Each file is read and validated whole before anything is written, then committed in
//! one atomic commit: a bad file is reported with its path and reason and skipped,
//! never half-imported. Re-importing a file adds nothing (results dedup on sweep, cell
//! key and attempt).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use shared::result::ResultRecord;

use super::common::WarehouseArgs;
use crate::import::legacy;
use crate::warehouse::schema::Origin;

#[derive(Debug, Args)]
#[command(long_about = "Import result files into the warehouse. PATH is a file or a folder \
(searched for *.json and *.jsonl). Two kinds of file are understood:\n\n\
- JSON lines of result records, as written by `accelbench-agent bench --json` or `--out` \
(stored as measured rows);\n- the legacy Python framework's benchmark JSON (three layouts; \
stored as imported rows with provenance imported:legacy-json:<sha256 of the file>, never \
mistaken for measurements).\n\nA file that is neither, or is corrupt, is reported and skipped; \
the others are imported. Exit status 1 if any file was skipped.")]
pub struct ImportArgs {
    /// Files or folders to import
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
}

/// What one file turned into.
struct Parsed {
    records: Vec<ResultRecord>,
    origin: Origin,
    skipped: Vec<String>,
}

pub async fn execute(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let files = collect(&args.paths)?;
    let wh = args.warehouse.open().await?;
    let mut n_bad = 0;
    for file in &files {
        let parsed = match parse_file(file) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("accelbench: skipped {}: {e:#}", file.display());
                n_bad += 1;
                continue;
            }
        };
        for s in &parsed.skipped {
            eprintln!("accelbench: {}: row skipped: {s}", file.display());
        }
        let out = wh.write_results(&parsed.records, parsed.origin).await?;
        println!(
            "{}: {} new, {} already present{}",
            file.display(),
            out.new,
            out.duplicate,
            if parsed.skipped.is_empty() { String::new() } else { format!(", {} rows skipped", parsed.skipped.len()) }
        );
    }
    Ok(if n_bad > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Files to import: the given files, and every *.json / *.jsonl under given folders.
fn collect(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            bail!("{}: no such file or folder", p.display());
        }
    }
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "json" || x == "jsonl") {
            out.push(p);
        }
    }
    Ok(())
}

fn parse_file(path: &Path) -> anyhow::Result<Parsed> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let label = path.display().to_string();
    if let Some(records) = result_lines(&bytes)? {
        return Ok(Parsed { records, origin: Origin::Measured, skipped: Vec::new() });
    }
    let (records, skipped) = legacy::parse(&bytes, &label)?;
    let skipped = skipped.into_iter().map(|s| format!("{}: {}", s.location, s.reason)).collect();
    Ok(Parsed { records, origin: Origin::Imported, skipped })
}

/// `Some(records)` if the file is JSON lines of result records (every line must be a
/// valid one: a file that starts like one and then breaks is an error, not a legacy
/// file); `None` if its first line is not a result record.
fn result_lines(bytes: &[u8]) -> anyhow::Result<Option<Vec<ResultRecord>>> {
    let text = std::str::from_utf8(bytes).context("not utf-8")?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).peekable();
    let Some((_, first)) = lines.peek() else { bail!("empty file") };
    if serde_json::from_str::<ResultRecord>(first).is_err() {
        return Ok(None);
    }
    let mut records = Vec::new();
    for (i, line) in lines {
        let r: ResultRecord = serde_json::from_str(line).with_context(|| format!("line {}", i + 1))?;
        r.validate().with_context(|| format!("line {}", i + 1))?;
        if r.provenance.weights_source.starts_with("imported:") {
            bail!("line {}: an imported row cannot be re-imported as a measurement", i + 1);
        }
        records.push(r);
    }
    Ok(Some(records))
}
