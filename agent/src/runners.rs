//! External engine runners (docs/RUNNERS.md): the ones this agent is configured with,
//! and whether each answers the handshake. An engine counts as present on this agent
//! only when its runner starts and says hello in protocol 1 for that very engine; what
//! went wrong otherwise is kept, for `doctor` and the logs.
//!
//! Configured in the agent's file as `runners.<engine> = [program, args…]`, e.g.
//! `runners.torch = ["/opt/torch-env/bin/python", "/opt/accelbench/ops/runners/torch_runner.py"]`
//! (`ops/runners/install-torch.sh` prints the command).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use shared::runner::{parse_line, FromRunner, Hello};
use shared::spec::Engine;

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
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        // One line, bounded: a runner that prints endlessly without a newline is cut off.
        let read =
            BufReader::new(stdout).take(shared::runner::MAX_LINE_BYTES as u64 + 1).read_line(&mut line).map(|_| line);
        let _ = tx.send(read);
    });
    // stderr in a thread of its own too: a process the runner started may hold it open.
    let (etx, erx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut said = String::new();
        let _ = stderr.take(64 << 10).read_to_string(&mut said);
        let _ = etx.send(said);
    });
    let first = rx.recv_timeout(limit);
    // The hello is all the agent wants of it now (and a runner past its limit is done).
    let _ = child.kill();
    let _ = child.wait();
    let said = erx.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
    let tail = |said: &str| match said.trim() {
        "" => String::new(),
        s => format!("; it said: {}", &s[s.len().saturating_sub(STDERR_TAIL)..]),
    };
    let line = match first {
        Err(_) => return Err(format!("no hello within {limit:?}{}", tail(&said))),
        Ok(Err(e)) => return Err(format!("reading its hello: {e}")),
        Ok(Ok(line)) if line.trim().is_empty() => return Err(format!("it ended without a hello{}", tail(&said))),
        Ok(Ok(line)) => line,
    };
    match parse_line(&line) {
        Ok(FromRunner::Hello(hello)) if hello.engine == engine => Ok(hello),
        Ok(FromRunner::Hello(hello)) => Err(format!("it says it runs `{}`, not `{engine}`", hello.engine)),
        Ok(other) => Err(format!("its first line is not a hello: {other:?}")),
        Err(e) => Err(format!("bad hello: {e}")),
    }
}

/// Every configured runner's handshake, by engine.
pub fn discover(runners: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Result<Hello, String>> {
    runners.iter().map(|(engine, argv)| (engine.clone(), handshake(engine, argv, HELLO_LIMIT))).collect()
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
