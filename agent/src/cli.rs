//! The `accelbench-agent` command line: argument parsing and dispatch only; the work
//! lives in the library modules. Errors print as `accelbench-agent: <chain>` and exit 2;
//! a closed stdout (`| head`) exits 0.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use shared::catalog::{Mode, Precision};
use shared::spec::{Engine, MeasurePolicy};

use crate::engine::weights::DEFAULT_SEED;
use crate::{bench, calibrate, cell, detect};

#[derive(Debug, Parser)]
#[command(
    name = "accelbench-agent",
    version = crate::LONG_VERSION,
    about = "Fingerprint this machine and run accelbench benchmarks on it",
    long_about = "The accelbench agent runs on a lab machine: it fingerprints the hardware, runs \
benchmark cells with the built-in candle engine (each cell in its own child process), \
and reports honest measurements.\n\nExit status: 0 success, 2 error."
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
    /// Print what this machine is: CPU, memory, GPUs, accelerators, OS
    #[command(long_about = "Print what this machine is: CPU (model, cores, frequencies, ML ISA \
flags, caches), memory, NUMA, NVIDIA GPUs through NVML, AMD GPUs from sysfs, Apple silicon, \
Qualcomm Snapdragon, the OS, the hardware classes results will be filed under and the \
machine's fingerprint hash. A probe that finds nothing says why.\n\n`--json` prints the \
fingerprint the agent sends when it registers with a coordinator, plus `hardware_classes`: \
the classes it registers (and results are filed under) and the device slot of each \
device it runs cells on (`device_slots`).")]
    Detect {
        /// Print the fingerprint as JSON
        #[arg(long)]
        json: bool,
    },
    /// List the model catalog with parameter counts and supported precisions
    Models {
        /// Print as JSON lines
        #[arg(long)]
        json: bool,
    },
    /// Run a matrix of benchmarks on this machine and print a table
    Bench(BenchArgs),
    /// Work for a coordinator: register, lease cells, run them, report results
    #[command(long_about = "Work for a coordinator: register this machine's fingerprint, then \
lease cells its hardware can run, run each in a child process, and report the results. Each \
result is written to the spool folder before it is sent and deleted only after the \
coordinator acknowledges it, so a crash or an outage loses nothing; after a restart the \
spool is re-sent first. The agent never exits because the coordinator is down: it retries \
with backoff. Stop it with Ctrl-C.\n\nThe agent proves who it is with a certificate from the lab CA \
(`accelbench ca issue --agent NAME` on the CA's machine): NAME becomes its agent id, and the \
same certificate secures --metrics-listen (scrapers then present a reader certificate).\n\n\
Example:\n  accelbench-agent run --coordinator https://coordinator.lab:7070 --ca ca.pem \
--cert agent-gpu07.pem --key agent-gpu07.key --labels rack=b3")]
    Run {
        #[command(flatten)]
        connect: ConnectArgs,
        /// Labels to register with, k=v (repeatable or comma-separated)
        #[arg(long, value_delimiter = ',', value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// Measure the calibrations again instead of reusing the spool folder's
        #[arg(long, conflicts_with = "no_calibrate")]
        recalibrate: bool,
        /// Register without calibrations (predictions for this machine's classes then
        /// rest on other agents' calibrations, or are refused)
        #[arg(long)]
        no_calibrate: bool,
        /// Let each CPU cell use at most N threads; the CPU's hardware class then says so
        /// (`cpu/AMD EPYC 7B13 (2 threads)`), so its results are never mixed with the
        /// unlimited CPU's
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
        cpu_threads: Option<u32>,
        /// Serve Prometheus metrics at https://ADDR/metrics (http:// without --cert): cells
        /// finished by status, cells running, results spooled; port 0 picks a free port,
        /// printed on stdout
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<std::net::SocketAddr>,
    },
    /// Check what this agent needs: spool folder, calibrations, device probes, coordinator
    #[command(long_about = "Check, one by one, what `run` needs: the spool folder (writable, \
free space, results waiting), cached calibrations, each device probe (an NVML or driver \
error shows here), each configured engine runner (does it say hello?), the coordinator (reachable, answering) and this machine's clock against \
the coordinator's. Each finding is ok, warn or \
FAIL, with what to do. Exits 1 if anything FAILs.\n\nExample:\n  accelbench-agent doctor \
--coordinator https://coordinator.lab:7070 --ca ca.pem --cert agent-gpu07.pem --key agent-gpu07.key \
--spool /var/lib/accelbench-agent/spool")]
    Doctor {
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Measure each device's GEMM rate per precision and its memory-copy bandwidth
    #[command(long_about = "Measure what each device this agent runs cells on does at dense \
matrix multiplication (an n×n GEMM at fp32, bf16 and fp16; n = 512 on a CPU, 4096 on a GPU) \
and at copying memory (64 MiB on a CPU, 512 MiB on a GPU), each in a child process, and \
print the rates at the median time. `run` measures the same when it starts and sends them \
when it registers; `accelbench predict` uses them as each hardware class's compute rate and \
bandwidth.")]
    Calibrate {
        /// Print as JSON lines
        #[arg(long)]
        json: bool,
    },
    /// Hash the weights a sweep names, or write the seeded weights out as files
    #[command(subcommand)]
    Weights(WeightsCommand),
    /// Run one cell read as JSON from stdin (used by the agent itself)
    #[command(hide = true)]
    ExecCell,
    /// Calibrate one device and print the figures as JSON (used by the agent itself)
    #[command(hide = true)]
    ExecCalibration(ExecCalibrationArgs),
}

/// `accelbench-agent weights …`: the files a sweep's `[[weights]]` entries name.
#[derive(Debug, Subcommand)]
pub enum WeightsCommand {
    /// Print the sha256 a sweep's [[weights]] entry must name for SOURCE
    #[command(long_about = "Print the sha256 a sweep's [[weights]] entry must name for SOURCE, and \
the file or folder it found, as `sha256sum` does. SOURCE is what the entry's `source` says: a \
Hugging Face folder (config.json and *.safetensors; several shards hash as the sha256 of their \
`<sha256>  <name>` lines), one .safetensors or .gguf file, or an ORG/NAME id in the Hugging Face \
cache ($HF_HOME, else ~/.cache/huggingface). An agent runs a cell on those files only if it \
finds the same hash.\n\nExample:\n  accelbench-agent weights hash /models/bert-base-uncased")]
    Hash {
        /// A folder, a .safetensors or .gguf file, or ORG/NAME in the Hugging Face cache
        source: String,
    },
    /// Write a catalog model's seeded weights as files another tool can load
    #[command(long_about = "Write a catalog model's seeded weights (the very values a cell on \
`random-init:seed=N` runs) under --out: a Hugging Face folder (config.json and \
model.safetensors) for bert and vit models, or with --precision q8_0|q4_0|q4_1 the .gguf file \
of a decoder. Prints the path written. A sweep can then name it in [[weights]], or another tool \
load it to compare.\n\nExample:\n  accelbench-agent weights export --model bert-tiny --seed 7 --out /tmp/w")]
    Export {
        /// A catalog model (`accelbench-agent models` lists them)
        #[arg(long)]
        model: String,
        /// Seed of the weights
        #[arg(long, default_value_t = crate::engine::weights::DEFAULT_SEED)]
        seed: u64,
        /// A quantized precision writes a .gguf file; otherwise a safetensors folder
        #[arg(long, default_value = "fp32")]
        precision: Precision,
        /// The folder to write into (made if missing)
        #[arg(long)]
        out: PathBuf,
    },
}

/// The hidden `exec-calibration` subcommand's arguments (also the coordinator's, whose
/// quickstart calibrates through it).
#[derive(Debug, Args)]
pub struct ExecCalibrationArgs {
    #[arg(long)]
    pub device: String,
    #[arg(long)]
    pub class: String,
}

/// Parses `std::env::args` and runs; the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let service = match cli.command {
        Command::ExecCell => "accelbench-cell",
        _ => "accelbench-agent",
    };
    // Dropped when main returns, after the command: flushes the spans it made.
    cli.log_format.apply();
    let _telemetry = telemetry::init(service);
    match run(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("accelbench-agent: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Detect { json } => {
            let fp = detect::detect();
            if json {
                serde_json::to_writer_pretty(&mut out, &detect_json(&fp)?)?;
                writeln!(out)?;
            } else {
                write!(out, "{}", detect::render_text(&fp))?;
            }
        }
        Command::Models { json } => bench::print_models(&mut out, json)?,
        Command::Weights(command) => crate::engine::weights::command(&command, &mut out)?,
        Command::Bench(args) => {
            let (run, output) = args.local_run()?;
            return bench::run(&run, &output, &mut out).map_err(|e| {
                // The measure policy's field names, as the flags that set them.
                let text = format!("{e:#}");
                anyhow::anyhow!("{}", flag_names(&text))
            });
        }
        Command::Run { connect, labels, recalibrate, no_calibrate, cpu_threads, metrics_listen } => {
            drop(out);
            let (Connection { coordinator, auth, spool }, file) = connect.resolve()?;
            let coordinator = coordinator.ok_or_else(|| {
                anyhow::anyhow!("no coordinator: give --coordinator URL, set ACCELBENCH_COORDINATOR, or put `coordinator` in --config")
            })?;
            // The file's labels, then the flags' (a flag wins for the same key).
            let mut all_labels = file.labels;
            all_labels.extend(labels);
            let cpu_threads = cpu_threads.or(file.cpu_threads);
            let metrics_listen = metrics_listen.or(file.metrics_listen);
            let no_calibrate = no_calibrate || file.no_calibrate;
            if let Some(n) = cpu_threads {
                // Before any thread exists: the cell and calibration children inherit it,
                // and candle sizes its thread pool and GEMM split by it.
                std::env::set_var("RAYON_NUM_THREADS", n.to_string());
            }
            let calibration = match (no_calibrate, recalibrate) {
                (true, _) => crate::worker::Calibrate::Off,
                (false, true) => crate::worker::Calibrate::Fresh,
                (false, false) => crate::worker::Calibrate::Cached,
            };
            let cfg = crate::worker::WorkerConfig {
                coordinators: std::sync::Arc::new(
                    proto::connect::Coordinators::parse(&coordinator).context("--coordinator")?,
                ),
                auth,
                spool_dir: spool,
                labels: all_labels,
                idle_poll: std::time::Duration::from_secs(1),
                calibration,
                cpu_threads,
                metrics_listen,
                runners: file.runners,
            };
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(crate::worker::run(cfg, async {
                let _ = tokio::signal::ctrl_c().await;
            }))?;
        }
        Command::Calibrate { json } => {
            let exe = std::env::current_exe()?;
            let found = calibrate::calibrate_all(&exe, &detect::detect());
            anyhow::ensure!(!found.is_empty(), "no device could be calibrated (see the warnings above)");
            calibrate::print(&mut out, &found, json)?;
        }
        Command::Doctor { connect } => {
            let (Connection { coordinator, auth, spool }, file) = connect.resolve()?;
            let fp = detect::detect();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let checks = rt.block_on(crate::doctor::run(coordinator.as_deref(), &auth, &spool, &fp, &file.runners));
            write!(out, "{}", crate::doctor::render(&checks))?;
            if checks.iter().any(|c| c.verdict == crate::doctor::Verdict::Fail) {
                return Ok(ExitCode::from(1));
            }
        }
        Command::ExecCell => {
            drop(out);
            cell::child::exec_cell(std::io::stdin().lock(), std::io::stdout().lock())?;
        }
        Command::ExecCalibration(args) => calibrate::exec_calibration(&args.device, &args.class, out)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the coordinator is and how the agent proves who it is (mutual TLS with a
/// certificate from the lab CA, whose name is the agent's id), and its spool: the
/// settings `run` and `doctor` share, from flags, the environment or `--config`.
#[derive(Debug, Args, Clone)]
pub struct ConnectArgs {
    /// TOML file with any of `run`'s settings (coordinator, ca, cert, key, spool, labels,
    /// cpu_threads, metrics_listen, no_calibrate); flags and environment variables
    /// override it
    #[arg(long, value_name = "FILE", env = "ACCELBENCH_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// The coordinator's gRPC address (https://HOST:PORT); for a cluster, every node's,
    /// comma-separated: the agent follows the leader across failovers
    #[arg(long, env = "ACCELBENCH_COORDINATOR", value_name = "URL[,URL…]")]
    pub coordinator: Option<String>,
    /// The lab CA's certificate (ca.pem from `accelbench ca init`); needed for https://
    #[arg(long, env = "ACCELBENCH_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// This agent's certificate (`accelbench ca issue --agent NAME`): NAME is its agent id
    #[arg(long, env = "ACCELBENCH_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// This agent's private key (goes with --cert)
    #[arg(long, env = "ACCELBENCH_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Folder for results not yet acknowledged [default: ./accelbench-spool]
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
}

/// [`ConnectArgs`] with the config file applied under them.
pub struct Connection {
    pub coordinator: Option<String>,
    pub auth: proto::connect::ClientAuth,
    pub spool: PathBuf,
}

impl ConnectArgs {
    /// The flags over the config file's settings; the file itself for the rest of them.
    pub fn resolve(self) -> anyhow::Result<(Connection, crate::config::AgentConfig)> {
        let mut file = crate::config::AgentConfig::load(self.config.as_deref())?;
        let auth = proto::connect::ClientAuth {
            ca: self.ca.or(file.ca.take()),
            cert: self.cert.or(file.cert.take()),
            key: self.key.or(file.key.take()),
            token: None,
        };
        anyhow::ensure!(
            auth.cert.is_some() == auth.key.is_some(),
            "--cert and --key go together (the certificate and its key from `accelbench ca issue --agent NAME`)"
        );
        let connection = Connection {
            coordinator: self.coordinator.or(file.coordinator.take()),
            auth,
            spool: self.spool.or(file.spool.take()).unwrap_or_else(|| crate::config::DEFAULT_SPOOL.into()),
        };
        Ok((connection, file))
    }
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("label {s:?}: expected key=value")),
    }
}

/// The fingerprint as JSON with what a coordinator derives from it: the hardware classes
/// and the device slots this agent runs cells in. A coordinator ignores the two extra
/// keys, so the output can be sent as a registration's fingerprint as it is.
fn detect_json(fp: &shared::fingerprint::Fingerprint) -> anyhow::Result<serde_json::Value> {
    let mut json = serde_json::to_value(fp)?;
    if let serde_json::Value::Object(map) = &mut json {
        map.insert("hardware_classes".into(), serde_json::json!(fp.hardware_classes()));
        let slots: Vec<serde_json::Value> = crate::slots::Slots::of(fp)
            .all()
            .map(|s| serde_json::json!({ "class": s.class, "device": s.device }))
            .collect();
        map.insert("device_slots".into(), serde_json::Value::Array(slots));
    }
    Ok(json)
}

/// Whether `e` comes from writing to a closed pipe (`… | head`): not an error for a CLI.
/// serde_json wraps the I/O error without exposing it as a source, so it is asked too.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let broken = std::io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == broken)
            || c.downcast_ref::<serde_json::Error>().is_some_and(|j| j.io_error_kind() == Some(broken))
    })
}

#[derive(Debug, Args, Clone)]
#[command(long_about = "Run the matrix model × batch × precision × mode on this machine with the \
built-in candle engine. Each cell runs in its own child process: a crash, an out-of-memory \
kill or a hang past the time limit becomes a result with that status, never the end of the \
run. Combinations the engine cannot run are reported `unsupported` with the reason.\n\n\
Weights are seeded random (`random-init:seed=N`) unless --weights gives a Hugging Face \
directory, a .gguf file or an ORG/NAME id in the Hugging Face cache ($HF_HOME).\n\n\
Examples:\n  accelbench-agent bench --model bert-tiny,vit-base-patch16-224 --batch 1,8 --precision fp32,bf16\n  \
accelbench-agent bench --model bert-base-uncased --engine candle,torch,onnxruntime --config agent.toml")]
pub struct BenchArgs {
    /// Models of the catalog, comma-separated (see `accelbench-agent models`)
    #[arg(long, value_delimiter = ',', required = true)]
    pub model: Vec<String>,
    /// Batch sizes, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub batch: Vec<u32>,
    /// Sequence length (tokens) for text models; vision and audio use their fixed input
    #[arg(long, default_value_t = 128)]
    pub seq: u32,
    /// Precisions: fp32, fp16, bf16, q8_0, q4_0, q4_1
    #[arg(long, value_delimiter = ',', default_value = "fp32")]
    pub precision: Vec<Precision>,
    /// Modes: inference, training
    #[arg(long, value_delimiter = ',', default_value = "inference")]
    pub mode: Vec<Mode>,
    /// Real weights: a directory (config.json + *.safetensors), a .gguf, or ORG/NAME
    #[arg(long, value_name = "PATH")]
    pub weights: Option<String>,
    /// Seed of random weights and synthetic inputs
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Device: cpu, or cuda:N (needs an agent built with --features cuda)
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Engines, comma-separated: candle (built in), torch, torch-compile, onnxruntime,
    /// onnxruntime-openvino, openvino, llamacpp;
    /// each one but candle needs its runner in --config (docs/RUNNERS.md)
    #[arg(long, value_delimiter = ',', default_value = "candle")]
    pub engine: Vec<Engine>,
    /// The agent's config file, for its `runners`
    #[arg(long, value_name = "FILE", env = "ACCELBENCH_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print full result records as JSON lines instead of the table
    #[arg(long)]
    pub json: bool,
    /// Also write the full result records as JSON lines to FILE
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub measure: MeasureArgs,
}

/// The measurement policy of a local run.
#[derive(Debug, Args, Clone)]
pub struct MeasureArgs {
    /// Warm-up iterations before timing
    #[arg(long, default_value_t = 2, help_heading = "Measurement")]
    pub warmup_iterations: u32,
    /// Minimum warm-up time, seconds
    #[arg(long, default_value_t = 0.5, help_heading = "Measurement")]
    pub warmup_seconds: f64,
    /// Minimum timed iterations
    #[arg(long, default_value_t = 10, help_heading = "Measurement")]
    pub min_iterations: u32,
    /// Minimum timed seconds
    #[arg(long, default_value_t = 1.0, help_heading = "Measurement")]
    pub min_seconds: f64,
    /// Cap on the timed phase, seconds
    #[arg(long, default_value_t = 30.0, help_heading = "Measurement")]
    pub max_seconds: f64,
    /// Stop early once the 95% CI of the median is within this fraction of it
    #[arg(long, default_value_t = 0.02, help_heading = "Measurement")]
    pub target_ci: f64,
}

impl MeasureArgs {
    pub fn policy(&self) -> MeasurePolicy {
        MeasurePolicy {
            warmup_iterations: self.warmup_iterations,
            warmup_min_seconds: self.warmup_seconds,
            min_iterations: self.min_iterations,
            min_seconds: self.min_seconds,
            max_seconds: self.max_seconds,
            target_relative_ci: self.target_ci,
        }
    }
}

impl BenchArgs {
    /// The run these flags ask for, and where its records go.
    pub fn local_run(&self) -> anyhow::Result<(bench::LocalRun, bench::Output)> {
        let runners = crate::config::AgentConfig::load(self.config.as_deref())?.runners;
        let run = bench::LocalRun {
            models: self.model.clone(),
            batch: self.batch.clone(),
            seq: self.seq,
            precision: self.precision.clone(),
            mode: self.mode.clone(),
            weights: self.weights.clone(),
            seed: self.seed,
            device: self.device.clone(),
            measure: self.measure.policy(),
            engines: self.engine.clone(),
            runners,
        };
        Ok((run, bench::Output { json: self.json, out: self.out.clone() }))
    }
}

/// A measure policy problem named by its flag (`measure.min_seconds` → `--min-seconds`).
fn flag_names(text: &str) -> String {
    [
        ("measure.warmup_iterations", "--warmup-iterations"),
        ("measure.warmup_min_seconds", "--warmup-seconds"),
        ("measure.min_iterations", "--min-iterations"),
        ("measure.min_seconds", "--min-seconds"),
        ("measure.max_seconds", "--max-seconds"),
        ("measure.target_relative_ci", "--target-ci"),
    ]
    .iter()
    .fold(text.to_string(), |t, (field, flag)| t.replace(field, flag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn a_broken_pipe_inside_a_json_error_is_recognised() {
        struct Closed;
        impl std::io::Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let e = serde_json::to_writer(Closed, &[1, 2, 3]).expect_err("the pipe is closed");
        assert!(is_broken_pipe(&anyhow::Error::from(e)));
        assert!(!is_broken_pipe(&anyhow::anyhow!("something else")));
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bench_parses_lists() {
        let cli = Cli::try_parse_from([
            "accelbench-agent",
            "bench",
            "--model",
            "bert-tiny,vit-base-patch16-224",
            "--batch",
            "1,4",
            "--precision",
            "fp32,bf16",
            "--json",
        ])
        .unwrap();
        let Command::Bench(b) = cli.command else { panic!("not bench") };
        assert_eq!(b.model, vec!["bert-tiny", "vit-base-patch16-224"]);
        assert_eq!(b.batch, vec![1, 4]);
        assert_eq!(b.precision.len(), 2);
        assert!(b.json);
    }

    fn bench_args(extra: &[&str]) -> crate::bench::LocalRun {
        let mut argv = vec!["accelbench-agent", "bench", "--model", "bert-tiny,vit-tiny,bert-tiny", "--batch", "1,4,1"];
        argv.extend_from_slice(extra);
        let Command::Bench(b) = Cli::try_parse_from(argv).expect("parses").command else { panic!("not bench") };
        b.local_run().expect("no config").0
    }

    /// A local run plans through the sweep's own expansion and measure bounds.
    #[test]
    fn bench_plans_like_a_sweep_and_checks_the_measure_flags_like_a_spec() {
        let cells = crate::bench::plan(&bench_args(&[]), "cpu/test", "f", "local", "run").expect("plans");
        // bert-tiny and vit-tiny at batch 1 and 4, fp32 by default; repeats give one cell.
        assert_eq!(cells.len(), 4, "{:?}", cells.iter().map(|c| &c.coordinates).collect::<Vec<_>>());
        let keys: std::collections::BTreeSet<_> = cells.iter().map(|c| c.cell_key.clone()).collect();
        assert_eq!(keys.len(), 4);
        let bad = bench_args(&["--min-seconds", "10", "--max-seconds", "5", "--target-ci", "1.5"]);
        let err = crate::bench::plan(&bad, "cpu/test", "f", "local", "run").expect_err("refused").to_string();
        assert!(err.contains("measure.min_seconds") && err.contains("measure.target_relative_ci"), "{err}");
        assert!(flag_names(&err).contains("--min-seconds") && flag_names(&err).contains("--target-ci"), "{err}");
    }
}
