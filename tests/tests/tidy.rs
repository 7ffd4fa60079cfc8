//! Rules of the codebase that `cargo test` enforces: every Rust file opens with a `//!`
//! doc saying what it is, and no test is skipped or inverted with the `ignore` or
//! `should_panic` attributes (assert today's behaviour instead).

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    e2e::repo_root()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !matches!(name.as_str(), "target" | "codegen" | "fixtures" | ".git" | "node_modules") {
                rust_files(&p, out);
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

fn all_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for krate in ["shared", "analysis", "proto", "telemetry", "agent", "coordinator", "tests"] {
        rust_files(&workspace_root().join(krate), &mut files);
    }
    assert!(files.len() > 10, "found only {} files: wrong root?", files.len());
    files
}

#[test]
fn every_file_opens_with_a_module_doc() {
    let missing: Vec<String> = all_files()
        .into_iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a //! doc: {missing:#?}");
}

#[test]
fn no_ignored_or_should_panic_tests() {
    let (ignore, should_panic) = (concat!("#[", "ignore"), concat!("#[", "should_panic"));
    let bad: Vec<String> = all_files()
        .into_iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            text.contains(ignore) || text.contains(should_panic)
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(bad.is_empty(), "files with skipped or inverted tests: {bad:#?}");
}
