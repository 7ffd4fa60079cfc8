//! The `accelbench` command line: one file per noun (`sweep.rs`, `query.rs`, …), each
//! with its clap arguments and `execute`. Errors print as `accelbench: <chain>` on
//! stderr.
//!
//! Exit status: 0 success, 1 the command ran but its answer is "no" (an invalid spec, a
//! file that could not be imported), 2 error.

pub mod agents;
pub mod ca;
pub mod cluster;
pub mod common;
pub mod compare;
pub mod dashboard;
pub mod doctor;
pub mod import;
pub mod listing;
pub mod predict;
pub mod query;
pub mod quickstart;
pub mod recommend;
pub mod regressions;
pub mod report;
pub mod scorecard;
pub mod serve;
pub mod sweep;
pub mod warehouse;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "accelbench",
    version = agent::LONG_VERSION,
    about = "Benchmark ML models across a lab's machines, and query the results",
    long_about = "accelbench measures how fast, how much memory and how much energy each model \
takes on each machine, per batch size, precision and mode, and keeps the results as Parquet \
queried with DuckDB.\n\nStart with `accelbench quickstart`.\n\nExit status: 0 success, 1 the \
command ran and answered no (invalid spec, file not imported), 2 error."
)]
pub struct Cli {
    /// How logs are written to stderr: text, or JSON lines carrying the fields of their
    /// spans (sweep, agent and cell ids); child processes log alike. `RUST_LOG` picks
    /// what is logged (warn by default)
    #[arg(long, global = true, value_enum, default_value_t, env = "ACCELBENCH_LOG_FORMAT")]
    pub log_format: telemetry::LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Benchmark this machine with a small built-in sweep and start a warehouse
    Quickstart(quickstart::QuickstartArgs),
    /// Run the coordinator (gRPC; Raft-replicated state on disk)
    Serve(serve::ServeArgs),
    /// Work with sweeps: plan, submit, status, watch, cancel, list
    #[command(subcommand)]
    Sweep(sweep::SweepCommand),
    /// The agents a coordinator knows
    #[command(subcommand)]
    Agents(agents::AgentsCommand),
    /// The coordinator's Raft group: role, term, commit and applied index per node
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Run one read-only SQL query over the warehouse
    Query(query::QueryArgs),
    /// Render a standard report (performance, hardware, compatibility)
    Report(report::ReportArgs),
    /// Is NEW faster or slower than BASE? Cell by cell, with intervals (exit 1 if slower)
    Compare(compare::CompareArgs),
    /// Which series got slower, from which run, and what changed there (exit 1 if any)
    Regressions(regressions::RegressionsArgs),
    /// How fast would a model be on a class at a batch nobody measured? With an 80% interval
    Predict(predict::PredictArgs),
    /// Which hardware class should run a model, by latency, throughput, per watt or cost
    Recommend(recommend::RecommendArgs),
    /// How often regressions, predict and recommend are wrong, on this warehouse's data
    Scorecard(scorecard::ScorecardArgs),
    /// Import result JSON lines and legacy benchmark JSON into the warehouse
    Import(import::ImportArgs),
    /// Serve a read-only web dashboard over a warehouse (sweeps, results, charts)
    Dashboard(dashboard::DashboardArgs),
    /// Check this machine for `serve`: state folder, warehouse, a running coordinator
    Doctor(doctor::DoctorArgs),
    /// The lab's certificate authority: init, issue certificates for agents, nodes, people
    #[command(subcommand)]
    Ca(ca::CaCommand),
    /// Bearer tokens for people and scripts: issue, revoke, list
    #[command(subcommand)]
    Token(ca::TokenCommand),
    /// Warehouse maintenance: gc, compact, files
    #[command(subcommand)]
    Warehouse(warehouse::WarehouseCommand),
    /// Run one cell read as JSON from stdin (quickstart's child processes)
    #[command(hide = true)]
    ExecCell,
    /// Calibrate one device and print the figures as JSON (quickstart's child process)
    #[command(hide = true)]
    ExecCalibration(agent::cli::ExecCalibrationArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Dropped when main returns, after the runtime: flushes the command's spans.
    cli.log_format.apply();
    let _telemetry = telemetry::init(cli.command.service_name());
    // The child processes quickstart starts run without an async runtime.
    let child = match &cli.command {
        Command::ExecCell => Some(agent::cell::child::exec_cell(std::io::stdin().lock(), std::io::stdout().lock())),
        Command::ExecCalibration(a) => {
            Some(agent::calibrate::exec_calibration(&a.device, &a.class, std::io::stdout().lock()))
        }
        _ => None,
    };
    if let Some(done) = child {
        return match done {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => report_error(e),
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return report_error(e.into()),
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => report_error(e),
    }
}

impl Command {
    /// The `service.name` of exported spans: the server and cell processes are told apart
    /// from the CLI.
    fn service_name(&self) -> &'static str {
        match self {
            Command::Serve(_) => "accelbench-coordinator",
            Command::ExecCell | Command::ExecCalibration(_) => "accelbench-cell",
            _ => "accelbench",
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Quickstart(a) => quickstart::execute(a).await,
        Command::Serve(a) => serve::execute(a).await,
        Command::Sweep(cmd) => cmd.execute().await,
        Command::Agents(cmd) => cmd.execute().await,
        Command::Cluster(cmd) => cmd.execute().await,
        Command::Query(a) => query::execute(a).await,
        Command::Report(a) => report::execute(a).await,
        Command::Compare(a) => compare::execute(a).await,
        Command::Regressions(a) => regressions::execute(a).await,
        Command::Predict(a) => predict::execute(a).await,
        Command::Recommend(a) => recommend::execute(a).await,
        Command::Scorecard(a) => scorecard::execute(a).await,
        Command::Doctor(a) => doctor::execute(a).await,
        Command::Dashboard(a) => dashboard::execute(a).await,
        Command::Import(a) => import::execute(a).await,
        Command::Warehouse(cmd) => cmd.execute().await,
        Command::Ca(cmd) => cmd.execute().await,
        Command::Token(cmd) => cmd.execute().await,
        Command::ExecCell | Command::ExecCalibration(_) => Ok(ExitCode::SUCCESS),
    }
}

fn report_error(e: anyhow::Error) -> ExitCode {
    if agent::cli::is_broken_pipe(&e) {
        return ExitCode::SUCCESS;
    }
    eprintln!("accelbench: {e:#}");
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sweep_plan_parses() {
        let cli = Cli::try_parse_from(["accelbench", "sweep", "plan", "s.toml", "--hardware-class", "cpu/X", "--json"])
            .expect("parses");
        let Command::Sweep(sweep::SweepCommand::Plan(p)) = cli.command else { panic!("not sweep plan") };
        assert_eq!(p.file.to_str(), Some("s.toml"));
        assert_eq!(p.hardware_class, vec!["cpu/X"]);
        assert!(p.json);
    }

    #[test]
    fn query_and_report_parse() {
        let cli = Cli::try_parse_from(["accelbench", "query", "SELECT 1", "--format", "csv", "--warehouse", "/w"])
            .expect("parses");
        let Command::Query(q) = cli.command else { panic!("not query") };
        assert_eq!(q.sql, "SELECT 1");
        assert_eq!(q.warehouse.warehouse, "/w");
        let cli = Cli::try_parse_from(["accelbench", "report", "compatibility", "--format", "html"]).expect("parses");
        let Command::Report(r) = cli.command else { panic!("not report") };
        assert_eq!(r.kind, crate::report::Kind::Compatibility);
        assert_eq!(r.format, crate::report::Format::Html);
    }
}
