//! Stamps the git commit into the binaries, for `--version` and result provenance.
use std::path::Path;
use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    let commit = if dirty { format!("{commit}-dirty") } else { commit };
    println!("cargo:rustc-env=ACCELBENCH_GIT_COMMIT={commit}");
    // Only watch paths that exist: a missing path makes cargo rerun this every build.
    for p in ["../.git/HEAD", "../.git/index", "../.git/packed-refs"] {
        if Path::new(p).is_file() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    if let Ok(head) = std::fs::read_to_string("../.git/HEAD") {
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            let p = format!("../.git/{r}");
            if Path::new(&p).is_file() {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    }
}
