//! External engine runners (docs/RUNNERS.md): the ones this agent is configured with,
//! and whether each answers the handshake. An engine counts as present on this agent
//! only when its runner starts and says hello in protocol 1 for that very engine; what
//! went wrong otherwise is kept, for `doctor` and the logs.
//!
//! Configured in the agent's file as `runners.<engine> = [program, args…]`, e.g.
//! `runners.torch = ["/opt/torch-env/bin/python", "/opt/accelbench/ops/runners/torch_runner.py"]`
//! (`ops/runners/install-torch.sh` prints the command).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use shared::fingerprint::Fingerprint;
use shared::hardware::{HardwareClass, HardwareKind};
use shared::runner::{parse_line, ErrorKind, FromRunner, Hello, Load, Loaded, ToRunner};
use shared::spec::Engine;

use crate::engine::{BuildError, Iteration, Workload};

/// A runner's `out_of_memory` error: the cell ends `oom`, as one the kernel killed does.
#[derive(Debug, thiserror::Error)]
#[error("out of memory: {0}")]
pub struct OutOfMemory(pub String);

/// How long a runner may take to say hello: importing torch cold takes seconds.
pub const HELLO_LIMIT: Duration = Duration::from_secs(60);

/// Bytes of a failed runner's stderr kept in the reason.
const STDERR_TAIL: usize = 600;

/// Checks the configured runners' engine names and commands, naming the bad entry.
pub fn check_config(runners: &BTreeMap<String, Vec<String>>) -> anyhow::Result<()> {
    for (engine, argv) in runners {
        let known = engine.parse::<Engine>().map_err(|e| anyhow::anyhow!("runners.{engine}: {e}"))?;
        anyhow::ensure!(known != Engine::Candle, "runners.candle: candle is built in and needs no runner");
        anyhow::ensure!(
            argv.first().is_some_and(|p| !p.trim().is_empty()),
            "runners.{engine}: give the command as a list, program first, e.g. [\"python3\", \"torch_runner.py\"]"
        );
    }
    Ok(())
}

/// Starts `argv`, reads its hello within `limit` and lets it go (its stdin is closed at
/// once, which ends a runner before any cell). The hello, or why there is none.
pub fn handshake(engine: &str, argv: &[String], limit: Duration) -> Result<Hello, String> {
    let (program, args) = argv.split_first().ok_or("no command")?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("`{program}` did not start: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let lines = lines_of(stdout);
    // stderr in a thread of its own too: a process the runner started may hold it open.
    let (etx, erx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut said = String::new();
        let _ = stderr.take(64 << 10).read_to_string(&mut said);
        let _ = etx.send(said);
    });
    let first = lines.recv_timeout(limit);
    // The hello is all the agent wants of it now (and a runner past its limit is done).
    let _ = child.kill();
    let _ = child.wait();
    let said = erx.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
    let tail = |said: &str| match said.trim() {
        "" => String::new(),
        // The last STDERR_TAIL bytes, cut at a character boundary (runners may print UTF-8).
        s => format!(
            "; it said: {}",
            &s[s.char_indices().map(|(i, _)| i).find(|&i| i + STDERR_TAIL >= s.len()).unwrap_or(0)..]
        ),
    };
    let line = match first {
        Err(mpsc::RecvTimeoutError::Timeout) => return Err(format!("no hello within {limit:?}{}", tail(&said))),
        Err(mpsc::RecvTimeoutError::Disconnected) => return Err(format!("it ended without a hello{}", tail(&said))),
        Ok(line) => line,
    };
    match parse_line(&line) {
        Ok(FromRunner::Hello(hello)) if hello.engine == engine => Ok(hello),
        Ok(FromRunner::Hello(hello)) => Err(format!("it says it runs `{}`, not `{engine}`", hello.engine)),
        Ok(other) => Err(format!("its first line is not a hello: {other:?}")),
        Err(e) => Err(format!("bad hello: {e}")),
    }
}

/// Every configured runner's handshake, by engine, all at once: each may take seconds
/// to import its engine, and the agent registers only after the last has answered.
pub fn discover(runners: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Result<Hello, String>> {
    std::thread::scope(|scope| {
        let asked: Vec<_> = runners
            .iter()
            .map(|(engine, argv)| (engine, scope.spawn(move || handshake(engine, argv, HELLO_LIMIT))))
            .collect();
        asked
            .into_iter()
            .map(|(engine, answer)| {
                let hello = answer.join().unwrap_or_else(|_| Err("its handshake panicked".to_string()));
                (engine.clone(), hello)
            })
            .collect()
    })
}

/// The external engines this agent runs: each configured runner that said hello, with
/// its command (which a cell of that engine starts) and what it said.
#[derive(Debug, Clone, Default)]
pub struct Present {
    by_engine: BTreeMap<String, (Vec<String>, Hello)>,
}

impl Present {
    /// Shakes hands with every configured runner, logging each verdict.
    pub fn discover(runners: &BTreeMap<String, Vec<String>>) -> Present {
        let mut by_engine = BTreeMap::new();
        for (engine, verdict) in discover(runners) {
            match verdict {
                Ok(hello) => {
                    tracing::info!(engine, version = hello.engine_version, runner = hello.runner, "runner present");
                    by_engine.insert(engine.clone(), (runners[&engine].clone(), hello));
                }
                Err(why) => tracing::warn!(engine, why, "runner absent: its cells will not be leased here"),
            }
        }
        Present { by_engine }
    }

    /// The runner command of `engine`, if it said hello.
    pub fn command(&self, engine: &str) -> Option<&Vec<String>> {
        self.by_engine.get(engine).map(|(argv, _)| argv)
    }

    /// What the agent registers: each engine with the hardware classes of the devices
    /// its runner named (devices this machine's fingerprint does not show are left out).
    pub fn registration(&self, fp: &Fingerprint) -> Vec<proto::v1::AgentEngine> {
        let groups = shared::device_group::device_groups(fp);
        self.by_engine
            .iter()
            .map(|(engine, (_, hello))| {
                let mut classes: Vec<String> = hello
                    .devices
                    .iter()
                    .filter_map(|d| class_of(fp, &d.device))
                    .filter(|class| groups.iter().any(|g| g.class == *class))
                    .collect();
                classes.sort();
                classes.dedup();
                proto::v1::AgentEngine {
                    engine: engine.clone(),
                    hardware_classes: classes,
                    version: hello.engine_version.clone(),
                }
            })
            .collect()
    }
}

/// The hardware class of a device as runners name it: `cpu`, or `<kind>:<index>` for
/// the accelerator of that kind and index in the fingerprint (`cuda:1`, `rocm:0`).
fn class_of(fp: &Fingerprint, device: &str) -> Option<String> {
    if device == "cpu" {
        return fp.hardware_class_of(HardwareKind::Cpu);
    }
    let (kind, index) = device.split_once(':')?;
    let index: u32 = index.parse().ok()?;
    fp.gpus
        .iter()
        .filter(|g| g.index == index)
        .filter_map(|g| g.hardware_class())
        .find(|class| HardwareClass::split(class).0 == kind)
}

/// One cell's runner process past its hello and `load`: a [`Workload`] whose iterations
/// the runner times itself (around its work and the device's synchronisation, not the
/// pipe). The measurement loop, warm-up and stopping rule stay the agent's. Dropping it
/// ends the runner (`end`, then a kill if it lingers). A runner that hangs is the cell's
/// time limit's to end: the cell process is killed, and the runner with it.
pub struct RunnerSession {
    pipe: Pipe,
    pub hello: Hello,
    /// What the runner really built: the row's device, execution provider and version.
    pub loaded: Loaded,
    /// Generative cells: the prompt's tokens and the decode steps each iteration times.
    prompt_tokens: u32,
    decode_steps: u32,
    /// Times a self-timing runner sent in one `samples` answer and the agent's loop has
    /// not taken yet: each is one iteration, so warm-up and the stopping rule stay the
    /// agent's.
    pending: std::collections::VecDeque<f64>,
}

impl RunnerSession {
    /// Starts `argv` for `engine`, reads its hello and has it load `cell`. A runner that
    /// cannot run the cell for real answers [`BuildError::Unsupported`] with its reason.
    pub fn start(engine: &str, argv: &[String], cell: &Load) -> Result<RunnerSession, BuildError> {
        let mut pipe = Pipe::start(engine, argv)?;
        let hello = match pipe.next()? {
            FromRunner::Hello(h) if h.engine == engine => h,
            other => return Err(failed(format!("the {engine} runner's first line is not its hello: {other:?}"))),
        };
        pipe.send(&ToRunner::Load(cell.clone()))?;
        let loaded = match pipe.next()? {
            FromRunner::Loaded(l) => l,
            other => return Err(failed(format!("the {engine} runner answered `load` with {other:?}"))),
        };
        Ok(RunnerSession {
            pipe,
            hello,
            loaded,
            prompt_tokens: cell.seq_len,
            decode_steps: cell.decode_steps,
            pending: Default::default(),
        })
    }

    /// Has the runner run its model once on the inputs in the safetensors file `inputs`
    /// and write the outputs to `outputs` (the validation pass).
    pub fn outputs(&mut self, inputs: &std::path::Path, outputs: &std::path::Path) -> Result<(), BuildError> {
        self.pipe.send(&ToRunner::Outputs {
            inputs: inputs.display().to_string(),
            outputs: outputs.display().to_string(),
        })?;
        match self.pipe.next()? {
            FromRunner::Outputs { .. } => Ok(()),
            other => Err(failed(format!("the runner answered `outputs` with {other:?}"))),
        }
    }

    /// The runner's process id (its GPU memory is its own, not the cell process's).
    pub fn pid(&self) -> u32 {
        self.pipe.child.id()
    }
}

impl Workload for RunnerSession {
    fn iterate(&mut self) -> anyhow::Result<Iteration> {
        let timed = |seconds| Iteration { own_time: Some(Duration::from_secs_f64(seconds)), ..Iteration::default() };
        if let Some(seconds) = self.pending.pop_front() {
            return Ok(timed(seconds));
        }
        self.pipe.send(&ToRunner::Run { iterations: 1 }).map_err(plain)?;
        match self.pipe.next().map_err(plain)? {
            FromRunner::Iteration { seconds, first_token_seconds, token_seconds } => Ok(Iteration {
                own_time: Some(Duration::from_secs_f64(seconds)),
                first_token: first_token_seconds.map(Duration::from_secs_f64),
                token_steps: token_seconds.into_iter().map(Duration::from_secs_f64).collect(),
            }),
            // A generative cell's row needs each iteration's token times, which samples
            // do not carry: refused rather than stored without them.
            FromRunner::Samples { .. } if self.decode_steps > 0 => {
                anyhow::bail!("the runner answered a decoder's `run` with samples, which carry no token times")
            }
            FromRunner::Samples { seconds } => {
                self.pending.extend(seconds);
                let first = self.pending.pop_front().ok_or_else(|| anyhow::anyhow!("the runner sent no samples"))?;
                Ok(timed(first))
            }
            other => anyhow::bail!("the runner answered `run` with {other:?}, not an iteration"),
        }
    }

    fn output(&self) -> Option<&candle_core::Tensor> {
        None
    }

    fn generation_shape(&self) -> Option<(u32, u32)> {
        (self.decode_steps > 0).then_some((self.prompt_tokens, self.decode_steps))
    }
}

/// The runner process and its two pipes: lines out, checked lines in.
struct Pipe {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Pipe {
    fn start(engine: &str, argv: &[String]) -> Result<Pipe, BuildError> {
        let (program, args) = argv.split_first().ok_or_else(|| failed(format!("runners.{engine}: no command")))?;
        let mut command = Command::new(program);
        command.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        crate::cell::runner::die_with_parent(&mut command);
        let mut child =
            command.spawn().map_err(|e| failed(format!("the {engine} runner `{program}` did not start: {e}")))?;
        let stdin = child.stdin.take().ok_or_else(|| failed("no stdin".into()))?;
        let stdout = child.stdout.take().ok_or_else(|| failed("no stdout".into()))?;
        Ok(Pipe { child, stdin, lines: lines_of(stdout) })
    }

    fn send(&mut self, message: &ToRunner) -> Result<(), BuildError> {
        self.stdin
            .write_all(shared::runner::line(message).as_bytes())
            .and_then(|()| self.stdin.flush())
            .map_err(|e| failed(format!("the runner stopped reading ({e})")))
    }

    /// The runner's next line; its `error` becomes the matching [`BuildError`].
    fn next(&mut self) -> Result<FromRunner, BuildError> {
        let line = self.lines.recv().map_err(|_| failed("the runner ended without answering".into()))?;
        match parse_line(&line).map_err(|e| failed(format!("the runner broke the protocol: {e}")))? {
            FromRunner::Error(e) => Err(match e.kind {
                ErrorKind::Unsupported => BuildError::Unsupported(e.message),
                ErrorKind::OutOfMemory => BuildError::Failed(anyhow::Error::new(OutOfMemory(e.message))),
                ErrorKind::Failed => failed(e.message),
            }),
            other => Ok(other),
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        let _ = self.send(&ToRunner::End);
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A runner's stdout, line by line, from a thread of its own; the channel closes when
/// the runner closes its stdout. Bounded: a line past the protocol's limit arrives cut
/// and `parse_line` refuses it as too long.
fn lines_of(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match (&mut reader).take(shared::runner::MAX_LINE_BYTES as u64 + 1).read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) if tx.send(line).is_err() => break,
                Ok(_) => {}
            }
        }
    });
    lines
}

/// A [`BuildError`] in the middle of a run, with its cause (an [`OutOfMemory`]) kept
/// where the chain can find it.
fn plain(e: BuildError) -> anyhow::Error {
    match e {
        BuildError::Failed(e) => e,
        BuildError::Unsupported(why) => anyhow::anyhow!(why),
    }
}

fn failed(message: String) -> BuildError {
    BuildError::Failed(anyhow::anyhow!(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = r#"{"type":"hello","protocol":1,"runner":"sh","engine":"torch","engine_version":"9","devices":[{"device":"cpu","name":"x"}],"precisions":["fp32"],"modes":["inference"],"families":["bert"]}"#;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn a_runner_is_present_only_when_it_says_hello_for_its_engine() {
        let limit = Duration::from_secs(10);
        let hello = handshake("torch", &sh(&format!("echo '{HELLO}'")), limit).expect("a hello");
        assert_eq!((hello.engine.as_str(), hello.engine_version.as_str()), ("torch", "9"));

        let cases = [
            (sh(&format!("echo '{HELLO}'")), "llamacpp", "it says it runs `torch`, not `llamacpp`"),
            (sh(&format!("echo '{}'", HELLO.replace(r#""protocol":1"#, r#""protocol":7"#))), "torch", "protocol 7"),
            (
                sh("echo 'ModuleNotFoundError: torch' >&2; exit 1"),
                "torch",
                "ended without a hello; it said: ModuleNotFoundError",
            ),
            (sh("echo hi"), "torch", "bad hello: not a runner message"),
            (
                sh("printf 'é%.0s' $(seq 400) >&2; printf 'x' >&2; exit 1"),
                "torch",
                "ended without a hello; it said: éé",
            ),
            (sh(r#"echo '{"type":"iteration","seconds":1}'"#), "torch", "first line is not a hello"),
            (vec!["/nonexistent/runner".into()], "torch", "`/nonexistent/runner` did not start"),
        ];
        for (argv, engine, said) in cases {
            let why = handshake(engine, &argv, limit).expect_err(said);
            assert!(why.contains(said), "{why} (wanted `{said}`)");
        }
        let why = handshake("torch", &sh("sleep 30"), Duration::from_millis(300)).expect_err("no hello");
        assert!(why.starts_with("no hello within 300ms"), "{why}");
    }

    /// An engine registers the classes of the devices its runner named in the agent's
    /// notation and the fingerprint shows: Intel's GPU and NPU included; a device in
    /// another notation or one the machine lacks is left out.
    #[test]
    fn an_engine_registers_the_classes_of_the_devices_it_named() {
        use shared::fingerprint::{GpuDevice, GpuVendor};
        let mut fp: Fingerprint =
            serde_json::from_str(include_str!("../tests/fixtures/h100x8-fingerprint.json")).expect("fixture");
        fp.gpus = vec![
            GpuDevice::new(0, GpuVendor::Intel, HardwareKind::Xpu, "Intel Arc A770"),
            GpuDevice::new(0, GpuVendor::Intel, HardwareKind::Npu, "Intel NPU (Meteor Lake)"),
        ];
        let devices = ["cpu", "xpu:0", "npu:0", "gpu.0", "metal:0", "xpu:1"]
            .map(|d| format!(r#"{{"device":"{d}","name":"n"}}"#))
            .join(",");
        let hello = HELLO
            .replace(r#""engine":"torch""#, r#""engine":"openvino""#)
            .replace(r#"[{"device":"cpu","name":"x"}]"#, &format!("[{devices}]"));
        let hello: Hello = match parse_line(&hello) {
            Ok(FromRunner::Hello(hello)) => hello,
            other => panic!("not a hello: {other:?}"),
        };
        let present = Present { by_engine: BTreeMap::from([("openvino".to_string(), (vec![], hello))]) };
        let registered = present.registration(&fp);
        assert_eq!(registered.len(), 1);
        let cpu = fp.hardware_class_of(HardwareKind::Cpu).expect("a cpu class");
        assert_eq!(
            registered[0].hardware_classes,
            [cpu, "npu/Intel NPU (Meteor Lake)".to_string(), "xpu/Intel Arc A770".to_string()]
        );
    }

    /// A runner in sh: hello, then `loaded`, 4 ms iterations and exit on `end`; any
    /// `load` of family `llama` is unsupported, of `t5` out of memory, of `whisper` runs
    /// out of memory at every `run`; and `run` number 3 kills it when asked to die.
    fn fake_runner(die_on_third_run: bool) -> Vec<String> {
        let script = format!(
            r#"echo '{HELLO}'; n=0
while read -r line; do case "$line" in
  *'"family":"llama"'*) echo '{{"type":"error","kind":"unsupported","message":"no llama here"}}';;
  *'"family":"t5"'*) echo '{{"type":"error","kind":"out_of_memory","message":"CUDA out of memory"}}';;
  *'"family":"vit"'*) own=1; echo '{{"type":"loaded","device":"cpu","execution_provider":null,"engine_version":"9"}}';;
  *'"family":"whisper"'*) oom=1; echo '{{"type":"loaded","device":"cpu","execution_provider":null,"engine_version":"9"}}';;
  *'"type":"load"'*) echo '{{"type":"loaded","device":"cpu","execution_provider":null,"engine_version":"9"}}';;
  *'"type":"run"'*) n=$((n+1)); [ {die} = 1 ] && [ $n = 3 ] && exit 9
    if [ -n "$oom" ]; then echo '{{"type":"error","kind":"out_of_memory","message":"CUDA out of memory"}}'
    elif [ -n "$own" ]; then echo '{{"type":"samples","seconds":[0.002,0.003,0.002]}}'
    else echo '{{"type":"iteration","seconds":0.004}}'; fi;;
  *'"type":"end"'*) exit 0;;
esac; done"#,
            die = u8::from(die_on_third_run)
        );
        sh(&script)
    }

    fn load(family: &str) -> Load {
        Load {
            protocol: shared::runner::PROTOCOL,
            model: "bert-tiny".into(),
            family: family.into(),
            weights: "/w".into(),
            batch: 1,
            seq_len: 8,
            precision: "fp32".into(),
            mode: "inference".into(),
            device: "cpu".into(),
            seed: 1,
            decode_steps: 0,
        }
    }

    #[test]
    fn a_runner_session_is_measured_by_the_agents_loop_at_the_runners_own_times() {
        let mut session = RunnerSession::start("torch", &fake_runner(false), &load("bert")).expect("starts");
        assert_eq!((session.loaded.device.as_str(), session.hello.engine_version.as_str()), ("cpu", "9"));
        let policy = shared::spec::MeasurePolicy {
            warmup_iterations: 2,
            warmup_min_seconds: 0.0,
            min_iterations: 5,
            min_seconds: 0.0,
            max_seconds: 0.5,
            target_relative_ci: 0.5,
        };
        let m = crate::measure::measure(&policy, &mut session, |_, _| {}).expect("measured");
        assert!(m.samples_ns.len() >= 5 && m.samples_ns.iter().all(|&ns| ns == 4e6), "{:?}", m.samples_ns);

        // A runner that times itself: each of its samples is one iteration of the loop.
        let mut own = RunnerSession::start("torch", &fake_runner(false), &load("vit")).expect("starts");
        let m = crate::measure::measure(&policy, &mut own, |_, _| {}).expect("measured");
        assert!(m.samples_ns.len() >= 5, "{:?}", m.samples_ns);
        assert!(m.samples_ns.iter().all(|&ns| ns == 2e6 || ns == 3e6), "{:?}", m.samples_ns);
        let mut decoder = load("vit");
        decoder.decode_steps = 4;
        let mut own = RunnerSession::start("torch", &fake_runner(false), &decoder).expect("starts");
        let why = own.iterate().expect_err("no token times").to_string();
        assert!(why.contains("carry no token times"), "{why}");

        let why = RunnerSession::start("torch", &fake_runner(false), &load("llama")).err().expect("unsupported");
        assert!(matches!(&why, BuildError::Unsupported(w) if w == "no llama here"), "{why}");
        let why = RunnerSession::start("torch", &fake_runner(false), &load("t5")).err().expect("out of memory");
        assert!(matches!(&why, BuildError::Failed(e) if e.is::<OutOfMemory>()), "{why}");
        let mut full = RunnerSession::start("torch", &fake_runner(false), &load("whisper")).expect("starts");
        let why = full.iterate().expect_err("out of memory");
        assert!(why.chain().any(|cause| cause.is::<OutOfMemory>()), "{why:#}");
        let mut dying = RunnerSession::start("torch", &fake_runner(true), &load("bert")).expect("starts");
        assert!(dying.iterate().is_ok() && dying.iterate().is_ok());
        let why = dying.iterate().expect_err("it died").to_string();
        assert!(why.contains("ended without answering"), "{why}");
    }

    #[test]
    fn bad_runner_settings_are_named() {
        let cfg = |engine: &str, argv: &[&str]| {
            let mut m = BTreeMap::new();
            m.insert(engine.to_string(), argv.iter().map(|s| s.to_string()).collect());
            check_config(&m).map_err(|e| e.to_string())
        };
        assert!(cfg("torch", &["python3", "torch_runner.py"]).is_ok());
        assert!(cfg("tensorflow", &["x"]).unwrap_err().starts_with("runners.tensorflow: "));
        assert!(cfg("candle", &["x"]).unwrap_err().contains("built in"));
        assert!(cfg("torch", &[]).unwrap_err().contains("program first"));
        assert!(cfg("torch", &[" "]).unwrap_err().contains("program first"));
    }
}
