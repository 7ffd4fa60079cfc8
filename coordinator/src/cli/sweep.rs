//! `accelbench sweep …`: sweep specs. `plan` validates a spec and prints the cells it
//! expands to without storing anything.

use crate::state::views::state_names as names;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use proto::connect::{AuthedChannel, Coordinators};
use proto::v1::fleet_service_client::FleetServiceClient;
use proto::v1::sweep_service_client::SweepServiceClient;
use proto::v1::{
    CancelSweepRequest, GetSweepRequest, ListSweepsRequest, SpecFormat, SubmitSweepRequest, SweepState, SweepStatus,
};
use serde_json::json;
use shared::cell::{self, Cell};
use shared::spec::{self, Format, Limits, SweepSpec};
use telemetry::propagate::{self, SendTraceContext, TraceParent};
use tracing::Instrument;

use super::listing::{ListFormat, Listing};

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
    /// Submit a sweep spec to the coordinator
    #[command(long_about = "Validate a sweep spec and submit it to the coordinator, which expands \
it into cells (fanning out over the hardware classes of the agents registered now) and leases \
them to agents. Prints the sweep id. With --watch, follows its progress until it ends.")]
    Submit(SubmitArgs),
    /// Print a sweep's progress: cells per state and per hardware class
    Status(IdArgs),
    /// Follow a sweep's progress until it ends
    Watch(IdArgs),
    /// Cancel a sweep: pending cells are dropped, running cells are told to stop
    Cancel(IdArgs),
    /// List sweeps, newest first
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The sweep spec: a .toml or .json file
    pub file: PathBuf,
    /// Follow progress until the sweep ends
    #[arg(long)]
    pub watch: bool,
    #[command(flatten)]
    pub coordinator: CoordinatorArgs,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// The sweep id (from `sweep submit` or `sweep list`)
    pub sweep_id: String,
    /// table for people; json (typed JSON lines, `type` = `sweep_status`) or csv for scripts
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    #[command(flatten)]
    pub coordinator: CoordinatorArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show at most this many
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// table for people; json (typed JSON lines, `type` = `sweep`) or csv for scripts
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
    #[command(flatten)]
    pub coordinator: CoordinatorArgs,
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
    /// Runs the command in its span (`sweep submit`, …): the root of the command's trace,
    /// or a child of `TRACEPARENT` when a traced script runs the CLI.
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        let span = tracing::info_span!("cli", otel.name = self.span_name(), sweep_id = tracing::field::Empty);
        propagate::set_parent(&span, TraceParent::from_env().as_ref());
        if let Some(id) = self.sweep_id() {
            span.record("sweep_id", id);
        }
        self.run().instrument(span).await
    }

    fn span_name(&self) -> &'static str {
        match self {
            SweepCommand::Plan(_) => "sweep plan",
            SweepCommand::Submit(_) => "sweep submit",
            SweepCommand::Status(_) => "sweep status",
            SweepCommand::Watch(_) => "sweep watch",
            SweepCommand::Cancel(_) => "sweep cancel",
            SweepCommand::List(_) => "sweep list",
        }
    }

    fn sweep_id(&self) -> Option<&str> {
        match self {
            SweepCommand::Status(a) | SweepCommand::Watch(a) | SweepCommand::Cancel(a) => Some(&a.sweep_id),
            _ => None,
        }
    }

    async fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            SweepCommand::Plan(args) => plan(&args, &mut std::io::stdout().lock()),
            SweepCommand::Submit(a) => submit(a).await,
            SweepCommand::Status(a) => {
                let mut c = a.coordinator.sweeps().await?;
                let s = c.get(GetSweepRequest { sweep_id: a.sweep_id }).await?.into_inner();
                status_listing(&s).print(a.format, &mut std::io::stdout().lock())?;
                Ok(ExitCode::SUCCESS)
            }
            SweepCommand::Watch(a) => watch(&a.coordinator, a.sweep_id).await,
            SweepCommand::Cancel(a) => {
                let mut c = a.coordinator.sweeps().await?;
                let s = c.cancel(CancelSweepRequest { sweep_id: a.sweep_id }).await?.into_inner();
                status_listing(&s).print(a.format, &mut std::io::stdout().lock())?;
                Ok(ExitCode::SUCCESS)
            }
            SweepCommand::List(a) => {
                let mut c = a.coordinator.sweeps().await?;
                let list = c.list(ListSweepsRequest { limit: a.limit }).await?.into_inner();
                sweeps_listing(&list.sweeps).print(a.format, &mut std::io::stdout().lock())?;
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

/// `--coordinator URL` and the credentials of every command that talks to a coordinator.
#[derive(Debug, Args, Clone)]
pub struct CoordinatorArgs {
    /// The coordinator's gRPC address (https://HOST:PORT; http:// only for --insecure
    /// ones); for a cluster, every node's, comma-separated: the CLI finds the leader
    #[arg(long, env = "ACCELBENCH_COORDINATOR", default_value = "https://127.0.0.1:7070", value_name = "URL[,URL…]")]
    pub coordinator: String,
    #[command(flatten)]
    pub credentials: CredentialArgs,
}

/// Who the caller is: a certificate from the lab CA, or a bearer token.
#[derive(Debug, Args, Clone, Default)]
pub struct CredentialArgs {
    /// The lab CA's certificate (ca.pem from `accelbench ca init`); needed for https://
    #[arg(long, env = "ACCELBENCH_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Your certificate (`accelbench ca issue --user NAME --role ROLE`)
    #[arg(long, env = "ACCELBENCH_CERT", value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Your certificate's private key
    #[arg(long, env = "ACCELBENCH_KEY", value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// A file holding your bearer token (`accelbench token issue`), instead of a
    /// certificate; the ACCELBENCH_TOKEN variable may hold the token itself
    #[arg(long, value_name = "FILE", conflicts_with = "cert")]
    pub token_file: Option<PathBuf>,
}

impl CredentialArgs {
    pub fn auth(&self) -> anyhow::Result<proto::connect::ClientAuth> {
        let token = match &self.token_file {
            Some(f) => Some(std::fs::read_to_string(f).with_context(|| format!("--token-file {}", f.display()))?),
            // Not a flag: a token on the command line is visible to every user's `ps`.
            None => std::env::var("ACCELBENCH_TOKEN").ok().filter(|t| !t.trim().is_empty()),
        };
        Ok(proto::connect::ClientAuth { ca: self.ca.clone(), cert: self.cert.clone(), key: self.key.clone(), token })
    }
}

impl CoordinatorArgs {
    /// The coordinators `--coordinator` names.
    pub fn coordinators(&self) -> anyhow::Result<Coordinators> {
        Coordinators::parse(&self.coordinator).context("--coordinator")
    }

    /// A channel to the coordinator (the leader, when several are given); every call
    /// carries the credentials and the current span's trace context.
    pub async fn channel(&self) -> anyhow::Result<AuthedChannel<SendTraceContext>> {
        self.coordinators()?.connect_leader(&self.credentials.auth()?, SendTraceContext).await
    }

    pub async fn sweeps(&self) -> anyhow::Result<SweepServiceClient<AuthedChannel<SendTraceContext>>> {
        Ok(SweepServiceClient::new(self.channel().await?))
    }

    pub async fn fleet(&self) -> anyhow::Result<FleetServiceClient<AuthedChannel<SendTraceContext>>> {
        Ok(FleetServiceClient::new(self.channel().await?))
    }
}

async fn submit(a: SubmitArgs) -> anyhow::Result<ExitCode> {
    // Validate here first: the same checks as the coordinator's, with file-relative output.
    match read_spec(&a.file, &Limits::default())? {
        Ok(_) => {}
        Err(problems) => {
            eprintln!("accelbench: {}: {problems}", a.file.display());
            return Ok(ExitCode::from(1));
        }
    }
    let text = std::fs::read_to_string(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let format = match a.file.extension().and_then(|e| e.to_str()).and_then(Format::from_extension) {
        Some(Format::Json) => SpecFormat::Json,
        _ => SpecFormat::Toml,
    };
    let mut c = a.coordinator.sweeps().await?;
    let r = c.submit(SubmitSweepRequest { spec: text, format: format as i32 }).await?.into_inner();
    tracing::Span::current().record("sweep_id", &r.sweep_id);
    println!("{}", r.sweep_id);
    eprintln!("submitted: {} cells", r.n_cells);
    if a.watch {
        return watch(&a.coordinator, r.sweep_id).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Follows a sweep with a progress bar per hardware class; exit 0 when it ends.
async fn watch(coordinator: &CoordinatorArgs, sweep_id: String) -> anyhow::Result<ExitCode> {
    use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
    let mut c = coordinator.sweeps().await?;
    let mut stream = c.watch(GetSweepRequest { sweep_id }).await?.into_inner();
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:40} {bar:30} {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut bars: std::collections::BTreeMap<String, ProgressBar> = Default::default();
    let mut last = None;
    while let Some(s) = stream.message().await? {
        let rows = std::iter::once(("all".to_string(), s.cells_by_state.clone()))
            .chain(s.by_hardware_class.iter().map(|c| (c.hardware_class.clone(), c.cells_by_state.clone())));
        for (class, counts) in rows {
            let bar = bars.entry(class.clone()).or_insert_with(|| {
                let b = multi.add(ProgressBar::new(0));
                b.set_style(style.clone());
                b.set_prefix(class.clone());
                b
            });
            let total: u64 = counts.values().sum();
            let get = |k: &str| counts.get(k).copied().unwrap_or(0);
            bar.set_length(total);
            bar.set_position(total - get(names::PENDING) - get(names::LEASED));
            bar.set_message(format!(
                "ok {} · unsupported {} · failed {} · running {} · pending {}",
                get("ok"),
                get("unsupported"),
                get("failed"),
                get(names::LEASED),
                get(names::PENDING)
            ));
        }
        last = Some(s);
    }
    for b in bars.values() {
        b.finish();
    }
    if let Some(s) = last {
        if multi.is_hidden() {
            status_listing(&s).print(ListFormat::Table, &mut std::io::stdout().lock())?;
        }
        eprintln!("sweep {} {}", s.sweep_id, state_name(s.state));
    }
    Ok(ExitCode::SUCCESS)
}

fn state_name(state: i32) -> &'static str {
    match SweepState::try_from(state) {
        Ok(SweepState::Running) => "running",
        Ok(SweepState::Done) => "done",
        Ok(SweepState::Cancelled) => "cancelled",
        _ => "unknown",
    }
}

/// A sweep's counts: one row for all its cells (`hardware_class` = `all`), then one per class.
fn status_listing(s: &SweepStatus) -> Listing {
    let mut columns = vec!["sweep_id", "state", "hardware_class"];
    columns.extend(names::ALL);
    let classes = std::iter::once(("all".to_string(), &s.cells_by_state))
        .chain(s.by_hardware_class.iter().map(|c| (c.hardware_class.clone(), &c.cells_by_state)));
    let rows = classes
        .map(|(class, counts)| {
            let mut row = vec![json!(s.sweep_id), json!(state_name(s.state)), json!(class)];
            row.extend(names::ALL.iter().map(|k| json!(counts.get(*k).copied().unwrap_or(0))));
            row
        })
        .collect();
    Listing { kind: "sweep_status", columns, rows }
}

fn sweeps_listing(sweeps: &[SweepStatus]) -> Listing {
    let rows = sweeps
        .iter()
        .map(|s| {
            let total: u64 = s.cells_by_state.values().sum();
            let open = names::UNFINISHED.iter().map(|k| s.cells_by_state.get(*k).copied().unwrap_or(0)).sum::<u64>();
            vec![
                json!(s.sweep_id),
                json!(s.name),
                json!(state_name(s.state)),
                json!(total),
                json!(total - open),
                json!(s.submitted_at_ms),
            ]
        })
        .collect();
    Listing { kind: "sweep", columns: vec!["sweep_id", "name", "state", "cells", "final", "submitted_at_ms"], rows }
}

/// Reads and validates a spec file; every problem is printed to stderr.
pub fn read_spec(
    file: &PathBuf,
    limits: &Limits,
) -> anyhow::Result<Result<SweepSpec, shared::diagnostic::Diagnostics>> {
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
            let weights = spec.weights_for(&c.model, c.precision);
            let line = serde_json::json!({"type": "cell", "key": c.key(&spec.name), "cell": c, "weights": weights});
            writeln!(out, "{line}")?;
        }
    } else {
        writeln!(out, "{} cells in sweep {}", cells.len(), spec.name)?;
        writeln!(out, "{}", cell_table(&spec, &cells))?;
        for w in &spec.weights {
            let precisions: Vec<String> = w.precisions.iter().map(ToString::to_string).collect();
            writeln!(
                out,
                "weights {}: {} at {} ({})",
                w.sha256.get(..12).unwrap_or(&w.sha256),
                w.model,
                precisions.join(", "),
                w.source
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The cells as a table; `weights` is the first 12 hex digits of the sha256 of the
/// real weights the spec names for the cell, or `seeded`.
fn cell_table(spec: &SweepSpec, cells: &[Cell]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["key", "model", "hardware", "class", "batch", "seq", "precision", "mode", "engine", "weights"]);
    for c in cells {
        let key = c.key(&spec.name);
        let weights =
            spec.weights_for(&c.model, c.precision).map_or("seeded", |w| w.sha256.get(..12).unwrap_or(&w.sha256));
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
            weights.to_string(),
        ]);
    }
    t
}
