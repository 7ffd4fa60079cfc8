//! The parent side of a cell: starts the child, feeds it the request, follows its
//! events, enforces the time limit, and turns every way a child can die into a result.
//!
//! - exit with a result line → that result;
//! - killed by us after the time limit → `timeout`;
//! - killed by SIGKILL from elsewhere (the kernel's OOM killer's signal), or an abort
//!   whose stderr says an allocation failed → `oom`;
//! - any other death without a result → `crashed`.
//!
//! Peak host memory is the child's `ru_maxrss` from `wait4`: the kernel's own account
//! of the cell process, which the child cannot misreport.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use shared::result::{ResultRecord, Status};

use super::{CellEvent, CellRequest};
use telemetry::propagate::{TraceParent, ENV_TRACEPARENT, ENV_TRACESTATE};

/// Bytes of stderr kept for the record.
const STDERR_TAIL: usize = 4096;

/// How to start the child and how long to let it run.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The `accelbench-agent` executable (its `exec-cell` subcommand).
    pub exe: PathBuf,
    /// Wall-clock limit of the whole child (model load + warm-up + timed loop).
    pub timeout: Duration,
    /// The trace the child's span joins when this process does not export its own
    /// (otherwise the child is parented on the current span).
    pub trace: Option<TraceParent>,
}

impl RunnerConfig {
    /// This executable, and a limit derived from the measure policy: loading and
    /// warm-up get as long again as the timed phase, plus two minutes for big weights.
    pub fn for_request(req: &CellRequest) -> anyhow::Result<RunnerConfig> {
        let exe = std::env::current_exe().context("finding the agent executable")?;
        let secs = 2.0 * req.measure.max_seconds + req.measure.warmup_min_seconds + 120.0;
        // A policy from outside may carry any float: refuse, never panic.
        let timeout = Duration::try_from_secs_f64(secs).map_err(|_| {
            anyhow::anyhow!(
                "measure policy: max_seconds {} and warmup min_seconds {} give no valid time limit",
                req.measure.max_seconds,
                req.measure.warmup_min_seconds
            )
        })?;
        Ok(RunnerConfig { exe, timeout, trace: None })
    }
}

/// Runs `req` in a child process. Only failure to start the child at all is an
/// error; everything the child does becomes a record.
pub fn run_cell(
    cfg: &RunnerConfig,
    req: &CellRequest,
    on_event: impl FnMut(&CellEvent),
) -> anyhow::Result<ResultRecord> {
    match run_cell_cancellable(cfg, req, &AtomicBool::new(false), on_event)? {
        Ran::Finished(record) => Ok(record),
        Ran::Withdrawn => anyhow::bail!("a cell that cannot be cancelled was cancelled"),
    }
}

/// How a cancellable cell ended.
#[derive(Debug)]
pub enum Ran {
    /// It ran to an end of its own (ok, failed, crashed, timed out...): report this.
    Finished(ResultRecord),
    /// Its lease was withdrawn and its child killed: there is nothing to report.
    Withdrawn,
}

/// [`run_cell`], killing the child as soon as `cancel` is set (a withdrawn lease).
pub fn run_cell_cancellable(
    cfg: &RunnerConfig,
    req: &CellRequest,
    cancel: &AtomicBool,
    mut on_event: impl FnMut(&CellEvent),
) -> anyhow::Result<Ran> {
    let mut command = Command::new(&cfg.exe);
    // The child's span joins the current one through TRACEPARENT; never a stale context
    // this process inherited.
    command.env_remove(ENV_TRACEPARENT).env_remove(ENV_TRACESTATE);
    if let Some(parent) = TraceParent::handed_on(&tracing::Span::current(), cfg.trace.as_ref()) {
        parent.set_env(&mut command);
    }
    pin_device(&mut command, &req.device);
    die_with_parent(&mut command);
    let mut child = command
        .arg("exec-cell")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} exec-cell", cfg.exe.display()))?;
    let pid = child.id() as libc::pid_t;
    let request = serde_json::to_vec(req)?;
    let mut stdin = child.stdin.take().context("child stdin")?;
    // A child that dies at once closes its stdin: that is a crash to report, not ours.
    let _ = stdin.write_all(&request).and_then(|_| stdin.flush());
    drop(stdin);

    let (tx, rx) = mpsc::channel::<CellEvent>();
    let stdout = child.stdout.take().context("child stdout")?;
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // A line that is not an event (a library printing to stdout) is ignored.
            if let Ok(ev) = serde_json::from_str::<CellEvent>(&line) {
                if tx.send(ev).is_err() {
                    break;
                }
            }
        }
    });
    let mut stderr = child.stderr.take().context("child stderr")?;
    let stderr_thread = std::thread::spawn(move || {
        let mut tail: Vec<u8> = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            tail.extend_from_slice(&buf[..n]);
            if tail.len() > 2 * STDERR_TAIL {
                tail.drain(..tail.len() - STDERR_TAIL);
            }
        }
        tail
    });

    let start = Instant::now();
    let mut result: Option<ResultRecord> = None;
    let mut timed_out = false;
    let mut cancelled = false;
    let exit = loop {
        while let Ok(ev) = rx.try_recv() {
            on_event(&ev);
            if let CellEvent::Result { record } = ev {
                result = Some(*record);
            }
        }
        if let Some(exit) = try_wait4(pid)? {
            break exit;
        }
        cancelled = cancel.load(Ordering::Relaxed);
        if cancelled || start.elapsed() > cfg.timeout {
            timed_out = !cancelled;
            // SAFETY: plain syscall on our own child's pid, which is not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            break wait4_blocking(pid)?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = reader.join();
    for ev in rx.try_iter() {
        on_event(&ev);
        if let CellEvent::Result { record } = ev {
            result = Some(*record);
        }
    }
    let tail_bytes = stderr_thread.join().unwrap_or_default();
    let tail = String::from_utf8_lossy(&tail_bytes[tail_bytes.len().saturating_sub(STDERR_TAIL)..]).into_owned();
    if cancelled {
        return Ok(Ran::Withdrawn);
    }
    Ok(Ran::Finished(conclude(req, result, exit, timed_out, cfg.timeout, tail)))
}

/// How the child ended, from `wait4`.
#[derive(Debug, Clone, Copy)]
struct Exit {
    status: i32,
    maxrss_bytes: u64,
}

impl Exit {
    fn signal(&self) -> Option<i32> {
        libc::WIFSIGNALED(self.status).then(|| libc::WTERMSIG(self.status))
    }
}

fn conclude(
    req: &CellRequest,
    result: Option<ResultRecord>,
    exit: Exit,
    timed_out: bool,
    timeout: Duration,
    tail: String,
) -> ResultRecord {
    let mut record = result.unwrap_or_else(|| died(req));
    record.memory.peak_host_bytes = Some(exit.maxrss_bytes);
    let clean_exit = exit.signal().is_none() && libc::WEXITSTATUS(exit.status) == 0;
    if timed_out {
        record.status = Status::Timeout;
        record.error = Some(format!("killed after the cell's time limit of {:.0} s", timeout.as_secs_f64()));
    } else if !clean_exit || record.error.as_deref() == Some(NO_RESULT) {
        let oom_text = tail.contains("memory allocation of") || tail.contains("out of memory");
        let (status, why) = match exit.signal() {
            Some(libc::SIGKILL) => {
                (Status::Oom, "killed by SIGKILL (the kernel's out-of-memory killer's signal)".to_string())
            }
            Some(_) if oom_text => (Status::Oom, "aborted: an allocation failed".to_string()),
            Some(sig) => (Status::Crashed, format!("killed by signal {sig}")),
            None => {
                (Status::Crashed, format!("exited with status {} without a result", libc::WEXITSTATUS(exit.status)))
            }
        };
        record.status = status;
        record.error = Some(why);
    }
    if record.status != Status::Ok {
        record.stderr_tail = Some(tail).filter(|t| !t.is_empty());
    }
    record
}

const NO_RESULT: &str = "the cell process ended without a result";

/// The record of a child that never answered.
fn died(req: &CellRequest) -> ResultRecord {
    let now = super::child::now_ms();
    let mut r = super::child::record_for(req, now);
    r.status = Status::Crashed;
    r.error = Some(NO_RESULT.into());
    r.provenance.finished_at_ms = now;
    r
}

fn try_wait4(pid: libc::pid_t) -> anyhow::Result<Option<Exit>> {
    wait4(pid, libc::WNOHANG)
}

fn wait4_blocking(pid: libc::pid_t) -> anyhow::Result<Exit> {
    wait4(pid, 0)?.context("wait4 returned no child")
}

fn wait4(pid: libc::pid_t, flags: i32) -> anyhow::Result<Option<Exit>> {
    let mut status = 0;
    // SAFETY: rusage is plain data; zeroed is a valid value for it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to locals; pid is our own unreaped child.
    let r = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
    match r {
        0 => Ok(None),
        r if r == pid => {
            // Linux reports ru_maxrss in KiB, macOS in bytes.
            let scale = if cfg!(target_os = "macos") { 1 } else { 1024 };
            Ok(Some(Exit { status, maxrss_bytes: usage.ru_maxrss.max(0) as u64 * scale }))
        }
        _ => Err(std::io::Error::last_os_error()).context("waiting for the cell process"),
    }
}

/// A CUDA cell sees only its own GPU: `CUDA_VISIBLE_DEVICES` holds the NVML index of
/// `device` (`cuda:N`), with CUDA numbering devices in PCI bus order as NVML does, so
/// the process cannot touch (or allocate on) another slot's GPU.
pub(crate) fn pin_device(command: &mut Command, device: &str) {
    command.env_remove("CUDA_VISIBLE_DEVICES");
    if let Some(n) = device.strip_prefix("cuda:") {
        command.env("CUDA_VISIBLE_DEVICES", n).env("CUDA_DEVICE_ORDER", "PCI_BUS_ID");
    }
}

/// A cell must not outlive its agent: an agent killed with SIGKILL (or crashing) cannot
/// kill its child, and an orphan would keep the device busy under the next cell of the
/// restarted agent, skewing what that one measures. The kernel delivers SIGKILL to the
/// child when the thread that spawned it exits; that thread waits for the child, so it
/// lives exactly as long as the cell should.
#[cfg(target_os = "linux")]
pub(crate) fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (prctl, getppid); it allocates nothing.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then we are already orphaned.
            if libc::getppid() == 1 {
                return Err(std::io::Error::other("the agent exited before its cell started"));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn die_with_parent(_command: &mut Command) {}
