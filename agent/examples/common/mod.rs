//! What the side-by-side bench examples (`vs_torch`, `vs_llamacpp`) share: their flags,
//! the CPU they print, the setup scripts of the other engine, and running one cell
//! through the product's own path.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use shared::result::ResultRecord;

/// The value after `name` in `args`.
pub fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// `--rounds` (default 3) and `--threads` (default: every core). Sets
/// `RAYON_NUM_THREADS` before rayon's pool exists; the cell children inherit it.
pub fn rounds_and_threads(args: &[String]) -> anyhow::Result<(usize, usize)> {
    let rounds: usize = flag(args, "--rounds").map(|v| v.parse()).transpose()?.unwrap_or(3);
    let threads: usize = match flag(args, "--threads") {
        Some(v) => v.parse().context("--threads wants a number")?,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    Ok((rounds, threads))
}

/// The workspace root (benches are run from a checkout).
pub fn repo_root() -> anyhow::Result<std::path::PathBuf> {
    Ok(Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("workspace root")?.to_path_buf())
}

/// Runs `ops/bench/<script>` and returns what it printed (a path to use).
pub fn setup(root: &Path, script: &str) -> anyhow::Result<String> {
    let out = Command::new("bash").arg(root.join("ops/bench").join(script)).output().context(script.to_string())?;
    if !out.status.success() {
        bail!("{script} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// One cell of `accelbench-agent bench FLAGS…` on this machine's CPU class, run as the
/// product runs it (a child process per cell).
pub fn run_cell(flags: &[&str]) -> anyhow::Result<ResultRecord> {
    use clap::Parser;
    #[derive(Parser)]
    struct A {
        #[command(flatten)]
        bench: agent::cli::BenchArgs,
    }
    static MACHINE: std::sync::OnceLock<(Option<String>, String)> = std::sync::OnceLock::new();
    let (class, hash) = MACHINE.get_or_init(|| {
        let fp = agent::detect::detect();
        (fp.hardware_class_of(shared::hardware::HardwareKind::Cpu), fp.hash())
    });
    let class = class.as_deref().context("no cpu class")?;
    let a = A::try_parse_from(std::iter::once("bench").chain(flags.iter().copied()))?;
    let reqs = agent::bench::plan(&a.bench.local_run()?.0, class, hash, "bench", &agent::bench::new_run_id())?;
    let req = reqs.first().context("empty plan")?;
    agent::bench::run_with_progress(req, 1, 1)
}

/// The CPU's model name, for the header of every figure.
pub fn cpu_name() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or_else(|| std::env::consts::ARCH.to_string(), |s| s.trim().to_string())
}
