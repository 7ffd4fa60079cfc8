//! A mutation fuzzer that runs on stable Rust, inside `cargo test`.
//!
//! Each target is a function over bytes (a sweep spec, a result record, a request
//! message, SQL, …). [`run`] starts from the target's corpus (real inputs: the repo's
//! examples and fixtures, plus `ops/fuzz/corpus/<target>/`), applies a few random
//! mutations per case (bit flips, bytes a parser cares about, deletions, duplications,
//! splices from another input, truncation) and calls the target under `catch_unwind`.
//! A panic is a finding: the input is written to the findings folder and reported; so is
//! a case slower than the hang bound. Seeded: the same seed and budget replay the same
//! inputs, so a finding can be reproduced from its seed and case number.
//!
//! Budget: `ACCELBENCH_FUZZ_SECONDS` per target (`ops/fuzz/run.sh` sets it); without it,
//! the small fixed number of cases `cargo test` runs in CI.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::fault::Rng;

/// A case slower than this is reported as a hang.
const HANG: Duration = Duration::from_secs(5);

/// How long or how many cases a target runs.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    Cases(u64),
    Seconds(f64),
}

impl Budget {
    /// `ACCELBENCH_FUZZ_SECONDS` if set, else `cases`.
    pub fn from_env(cases: u64) -> Budget {
        match std::env::var("ACCELBENCH_FUZZ_SECONDS").ok().and_then(|s| s.parse::<f64>().ok()) {
            Some(s) if s > 0.0 => Budget::Seconds(s),
            _ => Budget::Cases(cases),
        }
    }
}

/// What a run found.
#[derive(Debug)]
pub struct Report {
    pub target: String,
    pub cases: u64,
    pub seconds: f64,
    /// (case number, panic message, where the input was written)
    pub panics: Vec<(u64, String, PathBuf)>,
    /// (case number, seconds, where the input was written)
    pub hangs: Vec<(u64, f64, PathBuf)>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} cases in {:.1} s, {} panics, {} hangs",
            self.target,
            self.cases,
            self.seconds,
            self.panics.len(),
            self.hangs.len()
        )?;
        for (case, message, path) in &self.panics {
            write!(f, "\n  panic at case {case}: {message} (input: {})", path.display())?;
        }
        for (case, secs, path) in &self.hangs {
            write!(f, "\n  hang at case {case}: {secs:.1} s (input: {})", path.display())?;
        }
        Ok(())
    }
}

/// The corpus: every file under each of `paths` (files or folders, relative to the repo).
pub fn corpus(paths: &[&str]) -> Vec<Vec<u8>> {
    let root = crate::repo_root();
    let mut inputs = Vec::new();
    for p in paths {
        collect(&root.join(p), &mut inputs);
    }
    assert!(!inputs.is_empty(), "empty corpus from {paths:?}");
    inputs
}

fn collect(path: &Path, into: &mut Vec<Vec<u8>>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(path).into_iter().flatten().flatten().map(|e| e.path()).collect();
        entries.sort();
        for e in entries {
            collect(&e, into);
        }
    } else if let Ok(bytes) = std::fs::read(path) {
        into.push(bytes);
    }
}

/// Fuzzes `target` from `corpus` for `budget`, seeded with `seed`.
pub fn run(name: &str, corpus: &[Vec<u8>], budget: Budget, seed: u64, target: impl Fn(&[u8])) -> Report {
    let findings = findings_dir();
    let mut rng = Dice::new(seed);
    let start = Instant::now();
    let mut report = Report { target: name.into(), cases: 0, seconds: 0.0, panics: Vec::new(), hangs: Vec::new() };
    // Silence the default hook while inputs panic on purpose; restored after.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    loop {
        let done = match budget {
            Budget::Cases(n) => report.cases >= n,
            Budget::Seconds(s) => start.elapsed().as_secs_f64() >= s,
        };
        if done {
            break;
        }
        let case = report.cases;
        let input = mutate(corpus, &mut rng);
        let t = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| target(&input)));
        let took = t.elapsed();
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            report.panics.push((case, message, save(&findings, name, "panic", case, &input)));
        } else if took > HANG {
            report.hangs.push((case, took.as_secs_f64(), save(&findings, name, "hang", case, &input)));
        }
        report.cases += 1;
    }
    std::panic::set_hook(hook);
    report.seconds = start.elapsed().as_secs_f64();
    report
}

fn findings_dir() -> PathBuf {
    std::env::var_os("ACCELBENCH_FUZZ_FINDINGS")
        .map_or_else(|| std::env::temp_dir().join("accelbench-fuzz"), PathBuf::from)
}

fn save(dir: &Path, target: &str, kind: &str, case: u64, input: &[u8]) -> PathBuf {
    let path = dir.join(format!("{target}-{kind}-{case}.bin"));
    let _ = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, input));
    path
}

/// Bytes parsers of text formats treat specially.
const INTERESTING: &[u8] = b"\0\xff\"'[]{}\\\n=,:-.0123456789eE#*?%;\x7f";

/// One corpus input with 1–8 random mutations.
fn mutate(corpus: &[Vec<u8>], rng: &mut Dice) -> Vec<u8> {
    let mut data = corpus[rng.below(corpus.len())].clone();
    for _ in 0..=rng.below(8) {
        let len = data.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 if len > 0 => {
                let (a, b) = span(rng, len);
                data.drain(a..b);
            }
            3 if len > 0 => {
                let (a, b) = span(rng, len);
                let chunk = data[a..b].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, chunk.iter().copied().cycle().take(chunk.len() * (1 + rng.below(4))));
            }
            4 => {
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let (a, b) = span(rng, other.len());
                    let at = rng.below(len + 1);
                    data.splice(at..at, other[a..b].iter().copied());
                }
            }
            5 if len > 0 => data.truncate(rng.below(len)),
            _ => {
                let at = rng.below(len + 1);
                data.insert(at, INTERESTING[rng.below(INTERESTING.len())]);
            }
        }
    }
    data
}

/// A random range of at most 64 bytes inside `len`.
fn span(rng: &mut Dice, len: usize) -> (usize, usize) {
    let a = rng.below(len);
    let b = (a + 1 + rng.below(64)).min(len);
    (a, b)
}

/// The fault runs' seeded generator, with indices.
struct Dice(Rng);

impl Dice {
    fn new(seed: u64) -> Self {
        Dice(Rng(seed))
    }

    /// Uniform in `0..n` (`0` when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_target_is_reported_with_its_input_and_the_run_goes_on() {
        let corpus = vec![b"abc".to_vec()];
        let report = run("self-test", &corpus, Budget::Cases(200), 1, |input| {
            if input.contains(&b'"') {
                panic!("found a quote");
            }
        });
        assert_eq!(report.cases, 200);
        assert!(!report.panics.is_empty(), "200 mutations never inserted a quote?");
        let (_, message, path) = &report.panics[0];
        assert_eq!(message, "found a quote");
        assert!(std::fs::read(path).expect("saved").contains(&b'"'));
    }

    #[test]
    fn the_same_seed_replays_the_same_inputs() {
        let corpus = vec![b"hello world".to_vec(), b"{\"a\": 1}".to_vec()];
        let inputs = |seed| {
            let seen = std::cell::RefCell::new(Vec::new());
            run("replay", &corpus, Budget::Cases(50), seed, |i| seen.borrow_mut().push(i.to_vec()));
            seen.into_inner()
        };
        assert_eq!(inputs(7), inputs(7));
        assert_ne!(inputs(7), inputs(8));
    }
}
