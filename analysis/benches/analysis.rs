//! Times the two hot calls on synthetic, seeded data and prints the figures with the CPU
//! they ran on: `regressions::detect` over 1000 series of 500 runs (spread over the
//! machine's cores, one series per task), and `compare::ratio_of_medians` on 10 000
//! against 10 000 samples (and a million against a million, where the resample cap
//! matters). Run with `cargo bench -p analysis`; it is a program, not a timed test. It
//! also prints the CPU time of the detect threads and the load average, since the
//! wall-clock time on a shared machine counts other people's work too.

use std::num::NonZeroUsize;
use std::thread;
use std::time::{Duration, Instant};

use analysis::changepoint::EDivisiveOptions;
use analysis::compare::{ratio_of_medians, CompareOptions};
use analysis::regressions::{detect, DetectOptions};

const N_SERIES: usize = 1000;
const N_RUNS: usize = 500;

fn main() {
    println!("cpu: {} ({} threads available)", cpu_model(), n_threads());
    bench_detect();
    bench_compare(10_000);
    bench_compare(1_000_000);
}

/// What each synthetic series hides, and so what detect should find.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Flat,
    /// One step up of 5–20 % somewhere in the middle.
    OneStep,
    /// A step up and a later step down.
    TwoSteps,
}

struct Series {
    shape: Shape,
    runs: Vec<f64>,
}

fn bench_detect() {
    let all: Vec<Series> = (0..N_SERIES as u64).map(synthetic_series).collect();
    let load = load_average();
    let (elapsed, (per_series, cpu)) = timed(|| detect_all(&all, n_threads()));
    let cpu = cpu.map_or("unknown".to_string(), |cpu| format!("{:.3} s", cpu.as_secs_f64()));
    println!(
        "detect: {N_SERIES} series x {N_RUNS} runs in {:.3} s on {} threads; CPU time of those threads {cpu}; \
         load average before {load}",
        elapsed.as_secs_f64(),
        n_threads(),
    );
    for (shape, name) in [(Shape::Flat, "flat"), (Shape::OneStep, "one step up"), (Shape::TwoSteps, "up then down")] {
        let picked: Vec<&(Duration, usize)> =
            all.iter().zip(&per_series).filter(|(s, _)| s.shape == shape).map(|(_, r)| r).collect();
        let mean_ms = picked.iter().map(|(t, _)| t.as_secs_f64()).sum::<f64>() * 1e3 / picked.len() as f64;
        let with_alarm = picked.iter().filter(|(_, n_alarms)| *n_alarms > 0).count();
        println!(
            "  {name:>12}: {:4} series, {mean_ms:6.2} ms each on average, {with_alarm:4} with an alarm",
            picked.len()
        );
    }
}

/// Runs detect on every series across `n_threads` threads: per series its wall time and
/// number of alarms, and the CPU time the threads spent (where Linux tells it), which
/// other work on the machine does not inflate as it does the wall time.
fn detect_all(all: &[Series], n_threads: usize) -> (Vec<(Duration, usize)>, Option<Duration>) {
    let chunk_len = all.len().div_ceil(n_threads);
    let worker = |chunk: &[Series]| {
        let cpu_before = thread_cpu_time();
        let results: Vec<(Duration, usize)> = chunk.iter().map(detect_one).collect();
        let cpu = cpu_before.zip(thread_cpu_time()).map(|(before, after)| after.saturating_sub(before));
        (results, cpu)
    };
    thread::scope(|scope| {
        let workers: Vec<_> = all.chunks(chunk_len).map(|chunk| scope.spawn(move || worker(chunk))).collect();
        let mut all_results = Vec::with_capacity(all.len());
        let mut cpu_total = Some(Duration::ZERO);
        for handle in workers {
            let (results, cpu) = handle.join().expect("a detect thread panicked");
            all_results.extend(results);
            cpu_total = cpu_total.zip(cpu).map(|(total, cpu)| total + cpu);
        }
        (all_results, cpu_total)
    })
}

fn detect_one(series: &Series) -> (Duration, usize) {
    let options = DetectOptions {
        change_points: EDivisiveOptions { seed: 7, ..EDivisiveOptions::DEFAULT },
        ..DetectOptions::DEFAULT
    };
    let start = Instant::now();
    let alarms = detect(&series.runs, &options).expect("synthetic series are valid");
    (start.elapsed(), alarms.len())
}

fn bench_compare(n_samples: usize) {
    let mut noise = Noise(n_samples as u64);
    let base: Vec<f64> = (0..n_samples).map(|_| latency(&mut noise, 2e6)).collect();
    let new: Vec<f64> = (0..n_samples).map(|_| latency(&mut noise, 2.06e6)).collect();
    let options = CompareOptions { seed: 1, ..CompareOptions::DEFAULT };
    let (elapsed, comparison) = timed(|| ratio_of_medians(&base, &new, &options).expect("valid samples"));
    let cap = CompareOptions::DEFAULT.resample_cap;
    println!(
        "ratio_of_medians: {n_samples} vs {n_samples} samples, {} resamples (cap {cap}) in {:.3} s: ratio {:.4} in [{:.4}, {:.4}], {:?}",
        options.n_resamples,
        elapsed.as_secs_f64(),
        comparison.ratio,
        comparison.ratio_ci.low(),
        comparison.ratio_ci.high(),
        comparison.verdict
    );
}

/// Series `seed`: a level between 0.1 and 100 ms, 1–3 % noise, one run in a hundred an
/// outlier up to 30 % slower, and the steps of its shape (70 % flat, 20 % one step,
/// 10 % two).
fn synthetic_series(seed: u64) -> Series {
    let mut noise = Noise(seed);
    let level = 1e5 * 1000f64.powf(noise.unit());
    let spread = 0.01 + 0.02 * noise.unit();
    let shape = match seed % 10 {
        0..=6 => Shape::Flat,
        7 | 8 => Shape::OneStep,
        _ => Shape::TwoSteps,
    };
    let step_at = 100 + (noise.unit() * 300.0) as usize;
    let step = 1.05 + 0.15 * noise.unit();
    let runs = (0..N_RUNS)
        .map(|run_idx| {
            let factor = match shape {
                Shape::Flat => 1.0,
                Shape::OneStep => {
                    if run_idx >= step_at {
                        step
                    } else {
                        1.0
                    }
                }
                Shape::TwoSteps => {
                    if (step_at..step_at + 60).contains(&run_idx) {
                        step
                    } else {
                        1.0
                    }
                }
            };
            let outlier = if noise.unit() < 0.01 { 1.0 + 0.3 * noise.unit() } else { 1.0 };
            level * factor * outlier * (1.0 + spread * noise.gaussian())
        })
        .collect();
    Series { shape, runs }
}

/// A latency around `median`: log-normal-ish, a long right tail as real samples have.
fn latency(noise: &mut Noise, median: f64) -> f64 {
    median * (0.05 * noise.gaussian()).exp()
}

/// splitmix64 as a small seeded noise source for the synthetic data (the crate's own
/// generator is private to it).
struct Noise(u64);

impl Noise {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal by Box–Muller (one of the pair).
    fn gaussian(&mut self) -> f64 {
        let radius = (-2.0 * (1.0 - self.unit()).ln()).sqrt();
        radius * (std::f64::consts::TAU * self.unit()).cos()
    }
}

fn timed<T>(work: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = work();
    (start.elapsed(), out)
}

/// The calling thread's CPU time so far: the first field of its schedstat, in ns.
fn thread_cpu_time() -> Option<Duration> {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = schedstat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// The 1-minute load average: other work on the machine slows the wall-clock figures.
fn load_average() -> String {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    loadavg.split_whitespace().next().unwrap_or("unknown").to_string()
}

fn n_threads() -> usize {
    thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

fn cpu_model() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name")?.split_once(':').map(|(_, m)| m.trim().to_string()));
    model.unwrap_or_else(|| "unknown (no model name in /proc/cpuinfo)".to_string())
}
