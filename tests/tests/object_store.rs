//! The warehouse on a real S3-compatible server (moto's, started by the test through
//! `ops/s3/moto-server.sh`): `quickstart` writes and reports, `query` and `report` read,
//! all through object_store and a local copy of the committed files, never through
//! DuckDB's own S3 code (which would try to download an extension).

use std::process::{Command, Output};

use e2e::s3::S3Server;

fn accelbench(server: &S3Server, cache: &std::path::Path, args: &[&str]) -> Output {
    Command::new(e2e::binary("accelbench"))
        .args(args)
        .envs(server.env())
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
