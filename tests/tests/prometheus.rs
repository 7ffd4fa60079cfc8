//! The coordinator's metrics as a lab reads them: a real Prometheus server (the Debian
//! package, installed by `ops/metrics/prometheus.sh` where it is missing) scrapes
//! `/metrics` of a real coordinator that ran a sweep, and the series are queried back
//! through Prometheus's HTTP API.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{repo_root, tiny_spec, Cluster};

/// A Prometheus server on a free loopback port, scraping `target` every second;
/// stopped on drop.
struct Prometheus {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Scrapes `target` over TLS with a reader certificate, as a lab's Prometheus would.
    fn start(binary: &str, target: &str, tls: &proto::connect::ClientAuth) -> anyhow::Result<Prometheus> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("prometheus.yml");
        let file = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: accelbench\n    scheme: https\n    \
                 tls_config:\n      ca_file: {}\n      cert_file: {}\n      key_file: {}\n    static_configs:\n      \
                 - targets: ['{target}']\n",
                file(&tls.ca),
                file(&tls.cert),
                file(&tls.key)
            ),
        )?;
        let addr = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
            probe.local_addr()?.to_string()
        };
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.path().join("prometheus.log"))?))
            .spawn()?;
        Ok(Prometheus { child, addr, _dir: dir })
    }

    /// The value of the instant query `promql`'s single series, once it has one.
    fn value(&self, promql: &str) -> anyhow::Result<Option<f64>> {
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let mut stream = std::net::TcpStream::connect(&self.addr)?;
        write!(stream, "GET /api/v1/query?query={encoded} HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr)?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (_, body) = response.split_once("\r\n\r\n").unwrap_or(("", ""));
        let json: serde_json::Value = serde_json::from_str(body)?;
        anyhow::ensure!(json["status"] == "success", "{body}");
        Ok(json["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse().ok()))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_scrapes_the_coordinator() {
    let setup = Command::new("bash").arg(repo_root().join("ops/metrics/prometheus.sh")).output().expect("bash");
    if !setup.status.success() {
        // Like the GPU tests on a machine without a GPU: said, not silently passed.
        eprintln!(
            "SKIPPED: no Prometheus server here and ops/metrics/prometheus.sh could not install one: {}",
            String::from_utf8_lossy(&setup.stderr).trim()
        );
        return;
    }
    let binary = String::from_utf8_lossy(&setup.stdout).trim().to_string();
    let mut c = Cluster::start().expect("coordinator");
    c.start_agent(0).expect("agent");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let spec = c.write_spec("s.toml", &tiny_spec("scraped", &["bert-tiny"], &[1], 30)).expect("spec");
    let id = c.submit(&spec).expect("submit");
    c.wait_done(&id, Duration::from_secs(600)).await.expect("done");
    let target = c.metrics_url.trim_start_matches("https://").trim_end_matches("/metrics").to_string();
    let reader = c.auth(&["--user", "prometheus", "--role", "reader"]).expect("a reader certificate");
    let prometheus = Prometheus::start(&binary, &target, &reader).expect("prometheus starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut done, mut committed, mut up) = (None, None, None);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Not up yet, or no scrape yet: try again.
        up = prometheus.value("up{job=\"accelbench\"}").ok().flatten();
        done = prometheus.value("accelbench_cells{state=\"done\"}").ok().flatten();
        committed = prometheus.value("accelbench_results_total{outcome=\"committed\"}").ok().flatten();
        if done.is_some() && committed.is_some() {
            break;
        }
    }
    assert_eq!(up, Some(1.0), "prometheus reached the coordinator");
    assert_eq!(done, Some(2.0), "bert-tiny b1 at fp32 and bf16: two cells done");
    assert_eq!(committed, Some(2.0));
}
