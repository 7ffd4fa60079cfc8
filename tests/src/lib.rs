//! End-to-end test helpers: a [`Cluster`] of real `accelbench serve` and
//! `accelbench-agent run` processes on loopback, with a warehouse and data folders in a
//! temporary directory. Processes are killed when the cluster is dropped. [`otlp`] is a
//! trace receiver the processes can export to.
//!
//! A cluster is secured as a lab's would be: a throwaway CA (`accelbench ca init`), a
//! node certificate for the coordinator, one agent certificate per agent, and an admin
//! certificate for the CLI and the test's own clients, so the secure path is the tested
//! one. [`Cluster::start_insecure`] is the `--insecure` exception.
//!
//! The binaries come from the same target directory as the test (`cargo test
//! --workspace` builds them).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use proto::connect::{AuthedChannel, ClientAuth};
use proto::v1::agent_service_client::AgentServiceClient;
use proto::v1::fleet_service_client::FleetServiceClient;
use proto::v1::sweep_service_client::SweepServiceClient;
use proto::v1::{GetSweepRequest, ListAgentsRequest, SweepState, SweepStatus};

pub mod cdp;
pub mod diskfault;
pub mod fault;
pub mod fuzz;
pub mod netfault;
pub mod netns;
pub mod otlp;
pub mod raft;
pub mod s3;

/// The checkout the tests run in: `cargo test` sets `CARGO_MANIFEST_DIR` when it runs a
/// test binary, and that wins over the path compiled in, because one target folder
/// serves checkouts at several paths (CI's clone and a developer's) and cargo may run a
/// test binary built in another of them.
pub fn repo_root() -> PathBuf {
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir.parent().expect("tests/ has a parent").to_path_buf()
}

/// `target/debug/<name>`, next to the test binary's `deps/` folder.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target/debug");
    let p = dir.join(name);
    assert!(p.is_file(), "{} not built: run `cargo test --workspace` (or `cargo build --workspace`)", p.display());
    p
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub addr: String,
    /// The coordinator's `/metrics` URL (its HTTP listener, on a free port).
    pub metrics_url: String,
    /// The coordinator's dashboard, without the trailing `/`.
    pub dashboard_url: String,
    /// Extra environment of every process the cluster starts, CLI runs included.
    env: Vec<(String, String)>,
    coordinator: Option<Child>,
    agents: Vec<Option<Child>>,
    /// The warehouse folder when it is a small tmpfs of its own (unmounted on drop).
    small_disk: Option<PathBuf>,
    /// Where the coordinator's config file lives, kept as long as the cluster.
    config_dir: Option<tempfile::TempDir>,
    /// TLS and authentication on (the default), or `--insecure`.
    secure: bool,
}

/// A plain gRPC function pointer interceptor: test clients carry no trace context.
pub type Untraced = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;
/// A test's gRPC channel: TLS with its credentials.
pub type TestChannel = AuthedChannel<Untraced>;

impl Cluster {
    /// A coordinator on a free loopback port.
    pub fn start() -> anyhow::Result<Cluster> {
        Cluster::start_with_env(&[])
    }

    /// A coordinator on a free loopback port; every process gets `env` added.
    pub fn start_with_env(env: &[(&str, &str)]) -> anyhow::Result<Cluster> {
        Cluster::start_as(env, true)
    }

    /// A coordinator run with `--insecure`: plain text, no authentication.
    pub fn start_insecure() -> anyhow::Result<Cluster> {
        Cluster::start_as(&[], false)
    }

    fn start_as(env: &[(&str, &str)], secure: bool) -> anyhow::Result<Cluster> {
        let dir = tempfile::tempdir()?;
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut c = Cluster {
            dir,
            addr: String::new(),
            metrics_url: String::new(),
            dashboard_url: String::new(),
            env,
            coordinator: None,
            agents: Vec::new(),
            small_disk: None,
            config_dir: None,
            secure,
        };
        c.make_ca()?;
        c.start_coordinator("127.0.0.1:0")?;
        Ok(c)
    }

    /// The throwaway lab CA, the coordinator's node certificate and the admin's.
    fn make_ca(&self) -> anyhow::Result<()> {
        let dir = self.ca_dir();
        let o = Command::new(binary("accelbench")).args(["ca", "init", "--dir"]).arg(&dir).output()?;
        anyhow::ensure!(o.status.success(), "ca init: {}", String::from_utf8_lossy(&o.stderr));
        self.issue(&["--node", "coordinator"])?;
        self.issue(&["--user", "admin", "--role", "admin"])?;
        Ok(())
    }

    pub fn ca_dir(&self) -> PathBuf {
        self.dir.path().join("ca")
    }

    /// Issues a certificate with `accelbench ca issue ARGS` (once: an existing one is
    /// kept); its certificate and key files.
    pub fn issue(&self, args: &[&str]) -> anyhow::Result<(PathBuf, PathBuf)> {
        let role = match args {
            ["--agent", ..] => "agent",
            ["--node", ..] => "node",
            ["--user", _, "--role", role, ..] => role,
            _ => bail!("issue: {args:?}"),
        };
        let stem = self.ca_dir().join(format!("{role}-{}", args[1]));
        let (cert, key) = (stem.with_extension("pem"), stem.with_extension("key"));
        if !cert.exists() {
            let o = Command::new(binary("accelbench"))
                .args(["ca", "issue", "--dir"])
                .arg(self.ca_dir())
                .args(args)
                .output()?;
            anyhow::ensure!(o.status.success(), "ca issue {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        }
        Ok((cert, key))
    }

    /// Credentials of a certificate (from [`Cluster::issue`]) against this cluster's CA.
    pub fn auth(&self, args: &[&str]) -> anyhow::Result<ClientAuth> {
        if !self.secure {
            return Ok(ClientAuth::default());
        }
        let (cert, key) = self.issue(args)?;
        Ok(ClientAuth { ca: Some(self.ca_dir().join("ca.pem")), cert: Some(cert), key: Some(key), token: None })
    }

    /// The admin's credentials (the CLI's and the test clients').
    pub fn admin(&self) -> ClientAuth {
        self.auth(&["--user", "admin", "--role", "admin"]).expect("the admin certificate was issued at start")
    }

    /// The same credentials as `accelbench` flags.
    pub fn flags(auth: &ClientAuth) -> Vec<String> {
        let mut out = Vec::new();
        for (flag, path) in [("--ca", &auth.ca), ("--cert", &auth.cert), ("--key", &auth.key)] {
            if let Some(p) = path {
                out.extend([flag.to_string(), p.display().to_string()]);
            }
        }
        out
    }

    /// A gRPC channel to the coordinator with `auth`.
    pub async fn channel(&self, auth: &ClientAuth) -> anyhow::Result<TestChannel> {
        proto::connect::connect(&self.url(), auth, proto::connect::untraced as Untraced).await
    }

    /// The agent service as agent `name` (its certificate issued on first use).
    pub async fn agent_client(&self, name: &str) -> anyhow::Result<AgentServiceClient<TestChannel>> {
        Ok(AgentServiceClient::new(self.channel(&self.auth(&["--agent", name])?).await?))
    }

    /// A coordinator started with `serve.toml` = `config` (through
    /// `ACCELBENCH_SERVE_CONFIG`, as a service manager would pass it).
    pub fn start_with_config(config: &str) -> anyhow::Result<Cluster> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("serve.toml");
        std::fs::write(&path, config)?;
        let path = path.to_str().context("utf-8 temp path")?.to_string();
        let mut c = Cluster::start_with_env(&[("ACCELBENCH_SERVE_CONFIG", &path)])?;
        c.config_dir = Some(dir);
        Ok(c)
    }

    /// A coordinator whose warehouse is a tmpfs of `mib` MiB of its own, so a test can
    /// fill the disk under it ([`Cluster::fill_disk`]). `None` where mounting is not
    /// allowed (not root, or no tmpfs), with the reason.
    pub fn start_on_small_disk(mib: u32) -> anyhow::Result<Result<Cluster, String>> {
        let dir = tempfile::tempdir()?;
        let warehouse = dir.path().join("warehouse");
        std::fs::create_dir_all(&warehouse)?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&warehouse)
            .stderr(Stdio::piped())
            .output()?;
        if !mounted.status.success() {
            return Ok(Err(format!("mount tmpfs failed: {}", String::from_utf8_lossy(&mounted.stderr).trim())));
        }
        let mut c = Cluster {
            dir,
            addr: String::new(),
            metrics_url: String::new(),
            dashboard_url: String::new(),
            env: Vec::new(),
            coordinator: None,
            agents: Vec::new(),
            small_disk: Some(warehouse),
            config_dir: None,
            secure: true,
        };
        c.make_ca()?;
        c.start_coordinator("127.0.0.1:0")?;
        Ok(Ok(c))
    }

    /// Fills the small disk with a ballast file or, with `full = false`, frees it again;
    /// `false` when the warehouse is not on a small disk of its own.
    pub fn fill_disk(&self, full: bool) -> bool {
        let Some(disk) = &self.small_disk else { return false };
        let ballast = disk.join(".ballast");
        if !full {
            return std::fs::remove_file(&ballast).is_ok();
        }
        // Writes until the disk refuses: dd exits non-zero at ENOSPC, as intended.
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=1M", &format!("of={}", ballast.display())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        true
    }

    pub fn warehouse(&self) -> PathBuf {
        self.dir.path().join("warehouse")
    }

    pub fn url(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Starts (or restarts, on the same address) the coordinator.
    pub fn start_coordinator(&mut self, listen: &str) -> anyhow::Result<()> {
        let mut serve = Command::new(binary("accelbench"));
        serve
            .args(["serve", "--listen", listen, "--http-listen", "127.0.0.1:0", "--data-dir"])
            .arg(self.dir.path().join("coordinator"))
            .arg("--warehouse")
            .arg(self.warehouse());
        if self.secure {
            let ca = self.ca_dir();
            serve.arg("--tls-ca").arg(ca.join("ca.pem"));
            serve.arg("--tls-cert").arg(ca.join("node-coordinator.pem"));
            serve.arg("--tls-key").arg(ca.join("node-coordinator.key"));
        } else {
            serve.arg("--insecure");
        }
        let mut child = serve
            .envs(self.env.iter().cloned())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file(self.dir.path(), "coordinator")?))
            .spawn()
            .context("starting accelbench serve")?;
        let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let addr = line.trim().strip_prefix("listening on ").with_context(|| format!("first line {line:?}"))?;
        self.addr = addr.to_string();
        line.clear();
        stdout.read_line(&mut line)?;
        let url = line.trim().strip_prefix("metrics on ").with_context(|| format!("second line {line:?}"))?;
        self.metrics_url = url.to_string();
        line.clear();
        stdout.read_line(&mut line)?;
        let url = line.trim().strip_prefix("dashboard on ").with_context(|| format!("third line {line:?}"))?;
        self.dashboard_url = url.trim_end_matches('/').to_string();
        self.coordinator = Some(child);
        Ok(())
    }

    /// The coordinator's metrics as Prometheus would scrape them: `(name{labels}, value)`
    /// for every sample line.
    pub fn scrape(&self) -> anyhow::Result<Vec<(String, f64)>> {
        self.scrape_url(&self.metrics_url)
    }

    /// Scrapes any of the cluster's metrics listeners as a reader.
    pub fn scrape_url(&self, url: &str) -> anyhow::Result<Vec<(String, f64)>> {
        scrape(url, &self.auth(&["--user", "prometheus", "--role", "reader"])?)
    }

    /// Stops the coordinator as a service manager does (SIGTERM) and waits for it to
    /// exit; its exit status.
    pub fn stop_coordinator(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut c = self.coordinator.take().context("no coordinator running")?;
        let status = Command::new("kill").args(["-TERM", &c.id().to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill -TERM {} failed", c.id());
        Ok(c.wait()?)
    }

    pub fn kill_coordinator(&mut self) {
        if let Some(mut c) = self.coordinator.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the coordinator: its connections stay open
    /// and nothing it has not answered yet is answered meanwhile.
    pub fn pause_coordinator(&self, paused: bool) -> anyhow::Result<()> {
        let pid = self.coordinator.as_ref().context("no coordinator")?.id();
        let signal = if paused { "-STOP" } else { "-CONT" };
        let status = Command::new("kill").args([signal, &pid.to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill {signal} {pid} failed");
        Ok(())
    }

    /// Agent `idx`'s spool folder.
    pub fn spool(&self, idx: usize) -> PathBuf {
        self.dir.path().join(format!("spool-{idx}"))
    }

    /// Starts agent `idx` with its own spool folder (the same folder on a restart).
    pub fn start_agent(&mut self, idx: usize) -> anyhow::Result<()> {
        let child = self.agent_command(idx)?.stdout(Stdio::null()).spawn().context("starting accelbench-agent run")?;
        self.keep_agent(idx, child);
        Ok(())
    }

    /// Starts agent `idx` serving its metrics on a free port; their URL.
    pub fn start_agent_with_metrics(&mut self, idx: usize) -> anyhow::Result<String> {
        let mut child = self
            .agent_command(idx)?
            .args(["--metrics-listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .context("starting accelbench-agent run")?;
        let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
        self.keep_agent(idx, child);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        // Keep reading: a closed pipe would fail the agent's later writes to stdout.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Ok(line.trim().strip_prefix("metrics on ").with_context(|| format!("first line {line:?}"))?.to_string())
    }

    fn agent_command(&self, idx: usize) -> anyhow::Result<Command> {
        let mut cmd = Command::new(binary("accelbench-agent"));
        cmd.args(["run", "--coordinator", &self.url(), "--labels", &format!("test=agent{idx}"), "--spool"])
            .arg(self.spool(idx))
            .args(Cluster::flags(&self.auth(&["--agent", &format!("agent-{idx}")])?))
            .envs(self.env.iter().cloned())
            .stderr(Stdio::from(log_file(self.dir.path(), &format!("agent{idx}"))?));
        Ok(cmd)
    }

    fn keep_agent(&mut self, idx: usize, child: Child) {
        if self.agents.len() <= idx {
            self.agents.resize_with(idx + 1, || None);
        }
        self.agents[idx] = Some(child);
    }

    /// The pids of agent `idx`'s child processes (its running cells), from `/proc`.
    pub fn agent_children(&self, idx: usize) -> Vec<u32> {
        let Some(agent) = self.agents.get(idx).and_then(Option::as_ref) else { return Vec::new() };
        children_of(agent.id())
    }

    /// SIGKILL, as a power cut would.
    pub fn kill_agent(&mut self, idx: usize) {
        if let Some(mut a) = self.agents.get_mut(idx).and_then(Option::take) {
            let _ = a.kill();
            let _ = a.wait();
        }
    }

    pub fn agent_id(&self, idx: usize) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join(format!("spool-{idx}/agent-id"))).ok()
    }

    /// Runs the `accelbench` CLI as the admin.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_as(&self.admin(), args)
    }

    /// Runs the `accelbench` CLI with `auth` (through the environment, as a user's shell
    /// would set it).
    pub fn cli_as(&self, auth: &ClientAuth, args: &[&str]) -> Output {
        let mut cmd = Command::new(binary("accelbench"));
        cmd.args(args).envs(self.env.iter().cloned());
        for (var, path) in [("ACCELBENCH_CA", &auth.ca), ("ACCELBENCH_CERT", &auth.cert), ("ACCELBENCH_KEY", &auth.key)]
        {
            if let Some(p) = path {
                cmd.env(var, p);
            }
        }
        if let Some(t) = &auth.token {
            cmd.env("ACCELBENCH_TOKEN", t);
        }
        cmd.output().expect("accelbench runs")
    }

    pub fn write_spec(&self, name: &str, text: &str) -> anyhow::Result<PathBuf> {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text)?;
        Ok(p)
    }

    pub fn submit(&self, spec: &Path) -> anyhow::Result<String> {
        let o = self.cli(&["sweep", "submit", &spec.to_string_lossy(), "--coordinator", &self.url()]);
        if !o.status.success() {
            bail!("submit failed: {}", String::from_utf8_lossy(&o.stderr));
        }
        Ok(String::from_utf8(o.stdout)?.trim().to_string())
    }

    pub async fn client(&self) -> anyhow::Result<SweepServiceClient<TestChannel>> {
        Ok(SweepServiceClient::new(self.channel(&self.admin()).await?))
    }

    /// Polls until the sweep is no longer running.
    pub async fn wait_done(&self, sweep_id: &str, limit: Duration) -> anyhow::Result<SweepStatus> {
        let start = Instant::now();
        loop {
            if let Ok(mut c) = self.client().await {
                if let Ok(s) = c.get(GetSweepRequest { sweep_id: sweep_id.into() }).await {
                    let s = s.into_inner();
                    if s.state != SweepState::Running as i32 {
                        return Ok(s);
                    }
                }
            }
            if start.elapsed() > limit {
                bail!("sweep {sweep_id} not done after {limit:?}; logs in {}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Leases held by each agent id.
    pub async fn leases(&self) -> anyhow::Result<Vec<(String, u32)>> {
        let mut c = FleetServiceClient::new(self.channel(&self.admin()).await?);
        let agents = c.list_agents(ListAgentsRequest {}).await?.into_inner().agents;
        Ok(agents.into_iter().map(|a| (a.agent_id, a.n_leases)).collect())
    }

    /// A query's first column of every row, as JSON values.
    pub fn query(&self, sql: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let wh = self.warehouse();
        let o = self.cli(&["query", sql, "--warehouse", &wh.to_string_lossy(), "--format", "json"]);
        if !o.status.success() {
            bail!("query failed: {}", String::from_utf8_lossy(&o.stderr));
        }
        let text = String::from_utf8(o.stdout)?;
        text.lines().map(|l| Ok(serde_json::from_str(l)?)).collect()
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "log") {
                    let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(15).collect();
                    out.push_str(&format!("\n== {} ==\n", e.path().display()));
                    out.extend(tail.into_iter().rev().map(|l| format!("{l}\n")));
                }
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for idx in 0..self.agents.len() {
            self.kill_agent(idx);
        }
        self.kill_coordinator();
        if let Some(disk) = &self.small_disk {
            let _ = Command::new("umount").arg(disk).status();
        }
    }
}

fn log_file(dir: &Path, name: &str) -> anyhow::Result<std::fs::File> {
    Ok(std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{name}.log")))?)
}

/// Runs `accelbench-agent ARGS` (e.g. `weights hash`), asserting it succeeds; its
/// stdout, trimmed.
pub fn agent_cli(args: &[&str]) -> String {
    let out =
        std::process::Command::new(binary("accelbench-agent")).args(args).output().expect("accelbench-agent runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").trim().to_string()
}

/// Real weights for the tiny encoders, written by `accelbench-agent weights export`
/// under `dir` and hashed by `weights hash`, as a lab would: bert-tiny as a Hugging Face
/// folder, vit-tiny as one `.safetensors` file with no config beside it. Each is
/// `(model, source, sha256)`.
pub fn real_encoder_weights(dir: &Path) -> [(&'static str, PathBuf, String); 2] {
    let out = dir.to_str().expect("utf-8");
    let bert = agent_cli(&["weights", "export", "--model", "bert-tiny", "--seed", "77", "--out", out]);
    let vit_folder = agent_cli(&["weights", "export", "--model", "vit-tiny", "--seed", "78", "--out", out]);
    let vit = dir.join("vit-tiny.safetensors");
    std::fs::copy(Path::new(&vit_folder).join("model.safetensors"), &vit).expect("copy");
    [("bert-tiny", PathBuf::from(bert)), ("vit-tiny", vit)].map(|(model, source)| {
        let line = agent_cli(&["weights", "hash", source.to_str().expect("utf-8")]);
        let (sha256, found) = line.split_once("  ").expect("`<sha256>  <path>`");
        assert_eq!(Path::new(found), source, "{line}");
        (model, source.clone(), sha256.to_string())
    })
}

/// A spec's `[[weights]]` entry.
pub fn weights_entry(model: &str, source: &Path, sha256: &str) -> String {
    format!("[[weights]]\nmodel = \"{model}\"\nsource = \"{}\"\nsha256 = \"{sha256}\"\n", source.display())
}

/// A small sweep of tiny models with a short measurement policy; `lease_seconds` short
/// so that a killed agent's lease expires quickly.
pub fn tiny_spec(name: &str, models: &[&str], batches: &[u32], lease_seconds: u32) -> String {
    spec_measured(name, models, batches, &[16], lease_seconds, "warmup = { iterations = 1, min_seconds = 0.0 }\nmin_iterations = 3\nmin_seconds = 0.2\nmax_seconds = 2.0\ntarget_relative_ci = 0.5")
}

/// [`tiny_spec`] with cells as short as a cell can be: no warmup, one timed iteration.
/// For runs that need many cells through the system quickly, not their numbers.
pub fn one_iteration_spec(
    name: &str,
    models: &[&str],
    batches: &[u32],
    sequence_lengths: &[u32],
    lease_seconds: u32,
) -> String {
    spec_measured(name, models, batches, sequence_lengths, lease_seconds, "warmup = { iterations = 0, min_seconds = 0.0 }\nmin_iterations = 1\nmin_seconds = 0.0\nmax_seconds = 1.0\ntarget_relative_ci = 0.99")
}

fn spec_measured(
    name: &str,
    models: &[&str],
    batches: &[u32],
    seqs: &[u32],
    lease_seconds: u32,
    measure: &str,
) -> String {
    let models: Vec<String> = models.iter().map(|m| format!("\"{m}\"")).collect();
    let list = |values: &[u32]| values.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    format!(
        r#"name = "{name}"
[matrix]
models = [{}]
hardware = ["cpu"]
batch_sizes = [{}]
sequence_lengths = [{}]
precisions = ["fp32", "bf16"]
[measure]
{measure}
[policy]
max_attempts = 3
lease_seconds = {lease_seconds}
"#,
        models.join(", "),
        list(batches),
        list(seqs)
    )
}

/// Processes whose parent is `pid`, from `/proc/<pid>/stat` (field 4 is the parent).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            // The command name (field 2) may hold spaces; fields after its `)` are plain.
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            after.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid)
        })
        .collect()
}

impl Cluster {
    /// Freezes (SIGSTOP) or thaws (SIGCONT) agent `idx` and, with it, its running cell.
    pub fn pause_agent(&self, idx: usize, paused: bool) -> anyhow::Result<()> {
        let agent = self.agents.get(idx).and_then(Option::as_ref).context("no such agent")?;
        let mut pids = vec![agent.id()];
        pids.extend(children_of(agent.id()));
        let signal = if paused { "-STOP" } else { "-CONT" };
        for pid in pids {
            // A cell may end between listing and signalling: that is not a failure.
            let _ = Command::new("kill").args([signal, &pid.to_string()]).status();
        }
        Ok(())
    }

    /// The number of agent slots started so far.
    pub fn n_agents(&self) -> usize {
        self.agents.len()
    }
}

/// The metrics at `url` as Prometheus would scrape them: `(name{labels}, value)` for
/// every sample line (a plain HTTP/1.0 GET, no client library in the way).
pub fn scrape(url: &str, auth: &ClientAuth) -> anyhow::Result<Vec<(String, f64)>> {
    let (head, body) = http_get(url, auth)?;
    anyhow::ensure!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/2 200"),
        "{head}"
    );
    anyhow::ensure!(head.to_ascii_lowercase().contains("content-type: application/openmetrics-text"), "{head}");
    Ok(body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect())
}

/// GETs `url` with curl (TLS with `auth`'s client certificate when it has one, as
/// Prometheus and a browser with an imported certificate do): the head and the body.
pub fn http_get(url: &str, auth: &ClientAuth) -> anyhow::Result<(String, String)> {
    let mut curl = Command::new("curl");
    curl.args(["-sS", "--max-time", "10", "-i", url]);
    for (flag, path) in [("--cacert", &auth.ca), ("--cert", &auth.cert), ("--key", &auth.key)] {
        if let Some(p) = path {
            curl.arg(flag).arg(p);
        }
    }
    let o = curl.output().context("running curl")?;
    anyhow::ensure!(o.status.success(), "curl {url}: {}", String::from_utf8_lossy(&o.stderr).trim());
    let response = String::from_utf8(o.stdout)?;
    let (head, body) = response.split_once("\r\n\r\n").context("http response")?;
    Ok((head.to_string(), body.to_string()))
}

/// The results waiting in the spool folder `dir`: hash-named `*.json`, as the agent
/// names them (the folder also keeps the agent id and `calibrations.json`).
pub fn spooled_results(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let is_result = |p: &Path| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        name.strip_suffix(".json").is_some_and(|stem| stem.len() == 32 && stem.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    entries.flatten().map(|e| e.path()).filter(|p| is_result(p)).collect()
}
