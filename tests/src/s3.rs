//! A real S3-compatible server for the tests: moto's (PyPI), started through
//! `ops/s3/moto-server.sh`, which installs it into a virtualenv on first use.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The moto server; killed (with its process group) when dropped.
pub struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    /// Starts the server on a free port. The port is free when chosen and may be taken
    /// before the server binds it (the other tests start processes on ephemeral ports
    /// too): a server that exits is started again on another port.
    pub fn start() -> S3Server {
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
        let script = crate::repo_root().join("ops/s3/moto-server.sh");
        let child = Command::new("bash")
            .arg(script)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting ops/s3/moto-server.sh");
        S3Server { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment object_store's S3 client needs to use this server (any process
    /// given an `s3://bench/...` warehouse).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ENDPOINT", self.url()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
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
