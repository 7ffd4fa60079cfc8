//! The `accelbench` command line: one file per noun (`sweep.rs`, …), each with its
//! clap arguments and `execute`. Errors print as `accelbench: <chain>` on stderr.
//!
//! Exit status: 0 success, 1 the command ran but its answer is "no" (an invalid spec,
//! a regression found), 2 error.

pub mod sweep;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "accelbench",
    version = agent::LONG_VERSION,
    about = "Benchmark ML models across a lab's machines, and query the results",
    long_about = "accelbench measures how fast, how much memory and how much energy each model \
takes on each machine, per batch size, precision and mode.\n\nExit status: 0 success, 1 the \
command ran and answered no (invalid spec, regression found), 2 error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with sweeps: validate and plan a sweep spec
    #[command(subcommand)]
    Sweep(sweep::SweepCommand),
}

pub fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sweep(cmd) => cmd.execute(),
    };
    match result {
        Ok(code) => code,
        Err(e) if agent::cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("accelbench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
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
            .unwrap();
        let Command::Sweep(sweep::SweepCommand::Plan(p)) = cli.command;
        assert_eq!(p.file.to_str(), Some("s.toml"));
        assert_eq!(p.hardware_class, vec!["cpu/X"]);
        assert!(p.json);
    }
}
