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
    for krate in ["shared", "analysis", "proto", "telemetry", "kernels", "agent", "coordinator", "tests"] {
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

/// The systemd units in ops/systemd pass `systemd-analyze verify` with no warning (it
/// exits 0 on a misspelt setting, so its output must be empty too), pointed at the
/// binaries this build made. Skipped, saying so, where systemd-analyze is missing.
#[test]
fn systemd_units_verify() {
    let dir = workspace_root().join("ops/systemd");
    let units: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("ops/systemd")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "service"))
        .collect();
    assert_eq!(units.len(), 2, "the coordinator's and the agent's units: {units:?}");
    if std::process::Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("SKIPPED: systemd-analyze is not installed here");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut copies = Vec::new();
    for unit in &units {
        let text = std::fs::read_to_string(unit).expect("unit");
        assert!(text.contains("ExecStart=/usr/local/bin/accelbench"), "{}", unit.display());
        for hardening in ["NoNewPrivileges=yes", "DynamicUser=yes", "ProtectSystem=strict", "CapabilityBoundingSet="] {
            assert!(text.contains(hardening), "{} lacks {hardening}", unit.display());
        }
        // verify checks that ExecStart's binary exists: use the ones just built.
        let text = text
            .replace("/usr/local/bin/accelbench-agent", &e2e::binary("accelbench-agent").display().to_string())
            .replace("/usr/local/bin/accelbench ", &format!("{} ", e2e::binary("accelbench").display()));
        let copy = tmp.path().join(unit.file_name().expect("name"));
        std::fs::write(&copy, text).expect("write");
        copies.push(copy);
    }
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .args(&copies)
        .output()
        .expect("systemd-analyze");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
}

/// Every flag a service definition passes exists: the systemd units' `ExecStart=` and
/// the launchd agent's `ProgramArguments`, checked against the binaries' own `--help`
/// (a renamed flag would otherwise only fail on a lab machine at boot). The launchd file
/// must also parse as a property list (Python's plistlib, where Python is installed).
#[test]
fn service_definitions_use_flags_that_exist() {
    let ops = workspace_root().join("ops");
    let plist = ops.join("launchd/lab.accelbench.agent.plist");
    let mut lines: Vec<(PathBuf, String)> = Vec::new();
    for unit in ["systemd/accelbench-coordinator.service", "systemd/accelbench-agent.service"] {
        let text = std::fs::read_to_string(ops.join(unit)).expect("unit");
        for l in text.lines().filter_map(|l| l.strip_prefix("ExecStart=")) {
            lines.push((ops.join(unit), l.to_string()));
        }
    }
    let text = std::fs::read_to_string(&plist).expect("plist");
    let args: Vec<&str> = text
        .split("<string>")
        .skip(1)
        .filter_map(|s| s.split("</string>").next())
        .skip_while(|s| !s.ends_with("accelbench-agent"))
        .take_while(|s| !s.starts_with("lab.") && !s.starts_with("Standard"))
        .collect();
    lines.push((plist.clone(), args.join(" ")));
    for (file, line) in &lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let binary = words[0].rsplit('/').next().expect("a binary");
        let help =
            std::process::Command::new(e2e::binary(binary)).args([words[1], "--help"]).output().expect("--help runs");
        let help = String::from_utf8_lossy(&help.stdout);
        for flag in words.iter().filter(|w| w.starts_with("--")) {
            assert!(help.contains(&format!("{flag} ")), "{}: {binary} {} has no {flag}", file.display(), words[1]);
        }
    }
    match std::process::Command::new("python3")
        .args(["-c", "import plistlib,sys; plistlib.load(open(sys.argv[1],'rb'))"])
        .arg(&plist)
        .output()
    {
        Ok(o) => assert!(o.status.success(), "{}: {}", plist.display(), String::from_utf8_lossy(&o.stderr)),
        Err(_) => eprintln!("SKIPPED: python3 is not installed here to parse {}", plist.display()),
    }
}
