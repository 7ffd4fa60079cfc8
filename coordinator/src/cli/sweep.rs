//! `accelbench sweep …`: sweep specs. `plan` validates a spec and prints the cells it
//! expands to without storing anything.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use shared::cell::{self, Cell};
use shared::spec::{self, Format, Limits, SweepSpec};

#[derive(Debug, Subcommand)]
pub enum SweepCommand {
    /// Validate a sweep spec and print the cells it expands to (stores nothing)
    #[command(long_about = "Validate a sweep spec (TOML, or JSON by extension) and print the cells \
it expands to: the count, then a table (or JSON lines with --json). An invalid spec prints \
every problem at once, each naming the field, the value and what is allowed, and exits 1.\n\n\
With fan_out = \"each_hardware_class\", give the classes to fan out over with \
--hardware-class (e.g. \"cpu/AMD EPYC 7B13\", \"cuda/NVIDIA H100 80GB HBM3\"); without any, \
each selector stays one unresolved cell.")]
    Plan(PlanArgs),
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The sweep spec: a .toml or .json file
    pub file: PathBuf,
    /// A hardware class to fan out over (repeatable)
    #[arg(long, value_name = "CLASS")]
    pub hardware_class: Vec<String>,
    /// Print JSON lines: a `plan` line, then one `cell` line per cell
    #[arg(long)]
    pub json: bool,
    /// Refuse matrices with more cells than this
    #[arg(long, default_value_t = Limits::default().max_cells)]
    pub max_cells: usize,
}

impl SweepCommand {
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        match self {
            SweepCommand::Plan(args) => plan(&args, &mut std::io::stdout().lock()),
        }
    }
}

/// Reads and validates a spec file; every problem is printed to stderr.
pub fn read_spec(file: &PathBuf, limits: &Limits) -> anyhow::Result<Result<SweepSpec, spec::Diagnostics>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let format = file.extension().and_then(|e| e.to_str()).and_then(Format::from_extension).unwrap_or(Format::Toml);
    Ok(spec::parse(&text, format, limits))
}

fn plan(args: &PlanArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let limits = Limits { max_cells: args.max_cells, ..Limits::default() };
    let spec = match read_spec(&args.file, &limits)? {
        Ok(spec) => spec,
        Err(problems) => {
            eprintln!("accelbench: {}: {problems}", args.file.display());
            return Ok(ExitCode::from(1));
        }
    };
    let cells = cell::expand(&spec, &args.hardware_class);
    if args.json {
        let head = serde_json::json!({"type": "plan", "name": spec.name, "n_cells": cells.len()});
        writeln!(out, "{head}")?;
        for c in &cells {
            let line = serde_json::json!({"type": "cell", "key": c.key(&spec.name), "cell": c});
            writeln!(out, "{line}")?;
        }
    } else {
        writeln!(out, "{} cells in sweep {}", cells.len(), spec.name)?;
        writeln!(out, "{}", cell_table(&spec.name, &cells))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn cell_table(sweep_name: &str, cells: &[Cell]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["key", "model", "hardware", "class", "batch", "seq", "precision", "mode", "engine"]);
    for c in cells {
        let key = c.key(sweep_name);
        t.add_row(vec![
            key.as_str()[..12].to_string(),
            c.model.clone(),
            c.hardware.to_string(),
            c.hardware_class.clone().unwrap_or_else(|| "-".into()),
            c.batch.to_string(),
            c.seq_len.to_string(),
            c.precision.to_string(),
            c.mode.to_string(),
            c.engine.to_string(),
        ]);
    }
    t
}
