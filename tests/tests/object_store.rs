//! The warehouse on a real S3-compatible server (moto's, started by the test through
//! `ops/s3/moto-server.sh`): `quickstart` writes and reports, `query` and `report` read,
//! all through object_store and a local copy of the committed files, never through
//! DuckDB's own S3 code (which would try to download an extension).

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The moto server; killed (with its process group) when dropped.
struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    /// Starts the server on a free port. The port is free when chosen and may be taken
    /// before the server binds it (the other tests start processes on ephemeral ports
    /// too): a server that exits is started again on another port.
    fn start() -> S3Server {
        let start = Instant::now();
        for attempt in 1..=5 {
            let mut server = S3Server::spawn();
            // The first start installs moto into a virtualenv: allow it minutes.
            loop {
                if server.http(&["-X", "PUT", &format!("{}/bench", server.url())]) {
                    return server;
                }
                if let Ok(Some(status)) = server.child.try_wait() {
                    eprintln!("the S3 server exited ({status}) on port {}, attempt {attempt}", server.port);
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(600),
                    "the S3 server did not start on port {}",
                    server.port
                );
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        panic!("the S3 server exited at each of 5 starts (see above)");
    }

    fn spawn() -> S3Server {
        // A free port: bind, read it, release it for the server.
        let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let script = e2e::repo_root().join("ops/s3/moto-server.sh");
        let child = Command::new("bash")
            .arg(script)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting ops/s3/moto-server.sh");
        S3Server { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `curl` with `args`; whether it got a 2xx answer.
    fn http(&self, args: &[&str]) -> bool {
        Command::new("curl").args(["-sf", "-o", "/dev/null"]).args(args).status().is_ok_and(|s| s.success())
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // The script execs python, so its pid is the server's.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn accelbench(server: &S3Server, cache: &std::path::Path, args: &[&str]) -> Output {
    Command::new(e2e::binary("accelbench"))
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT", server.url())
        .env("AWS_ALLOW_HTTP", "true")
        .env("XDG_CACHE_HOME", cache)
        .output()
        .expect("running accelbench")
}

#[test]
fn quickstart_query_and_reports_work_on_an_s3_warehouse() {
    let server = S3Server::start();
    let cache = tempfile::tempdir().expect("tempdir");
    let wh = "s3://bench/warehouse";
    let o = accelbench(&server, cache.path(), &["quickstart", "--data", wh]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "quickstart on s3 failed: {err}");
    assert!(out.contains("# accelbench performance report"), "{out}");
    assert!(out.contains(wh), "the next steps name the warehouse: {out}");

    let o = accelbench(
        &server,
        cache.path(),
        &["query", "SELECT count(*) AS n FROM results", "--warehouse", wh, "--format", "json"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let row: serde_json::Value = serde_json::from_slice(&o.stdout).expect("a json row");
    assert!(row["n"].as_u64().is_some_and(|n| n >= 12), "{row}");

    for report in ["performance", "compatibility", "hardware"] {
        let o = accelbench(&server, cache.path(), &["report", report, "--warehouse", wh]);
        assert!(o.status.success(), "report {report}: {}", String::from_utf8_lossy(&o.stderr));
    }
    // Every file is in the bucket, none was written to a local folder named after the URL.
    assert!(!std::path::Path::new("s3:").exists(), "quickstart made a local folder named s3:");
}
