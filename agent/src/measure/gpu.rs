//! NVIDIA GPU counters around a cell's timed loop, through NVML: the energy counter
//! (millijoules since driver load) where the GPU has one, else power sampled every
//! 50 ms and integrated; and this process's peak device memory, sampled the same way
//! (NVML's per-process accounting, which covers every allocator in the process).
//! Without a driver `start` returns `None` and nothing is recorded: no guess.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::Nvml;

const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// What the sampler saw between start and stop.
#[derive(Debug, Default, Clone)]
struct Samples {
    peak_bytes: Option<u64>,
    /// Integral of sampled power, joules.
    sampled_joules: f64,
    n_power: u32,
}

/// A running NVML monitor of one device.
pub struct GpuMonitor {
    nvml: Arc<Nvml>,
    index: u32,
    energy_start_mj: Option<u64>,
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Samples>>,
    thread: Option<JoinHandle<()>>,
}

/// Readings of a finished monitor.
pub struct GpuReading {
    pub joules: Option<f64>,
    pub energy_source: Option<&'static str>,
    pub peak_device_bytes: Option<u64>,
}

impl GpuMonitor {
    /// Starts monitoring device `index` and the memory process `pid` holds on it (this
    /// process, or the runner process of an external engine); `None` without an NVIDIA
    /// driver.
    pub fn start(index: u32, pid: u32) -> Option<GpuMonitor> {
        let nvml = Arc::new(Nvml::init().ok()?);
        let energy_start_mj = nvml.device_by_index(index).ok()?.total_energy_consumption().ok();
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Samples::default()));
        let thread = {
            let (nvml, stop, samples) = (nvml.clone(), stop.clone(), samples.clone());
            std::thread::spawn(move || sample_loop(&nvml, index, pid, &stop, &samples))
        };
        Some(GpuMonitor { nvml, index, energy_start_mj, stop, samples, thread: Some(thread) })
    }

    /// Starts the energy reading afresh (counter and sampled power), keeping the memory
    /// peak: called where the timed loop begins, so warm-up energy is not counted.
    pub fn restart_energy(&mut self) {
        if let Ok(mut s) = self.samples.lock() {
            s.sampled_joules = 0.0;
            s.n_power = 0;
        }
        self.energy_start_mj =
            self.nvml.device_by_index(self.index).ok().and_then(|d| d.total_energy_consumption().ok());
    }

    pub fn stop(mut self) -> GpuReading {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let s = self.samples.lock().map(|s| s.clone()).unwrap_or_default();
        let end_mj = self.nvml.device_by_index(self.index).ok().and_then(|d| d.total_energy_consumption().ok());
        let (joules, energy_source) = match (self.energy_start_mj, end_mj) {
            (Some(a), Some(b)) if b >= a => (Some((b - a) as f64 / 1e3), Some("nvml-energy-counter")),
            _ if s.n_power > 0 => (Some(s.sampled_joules), Some("nvml-power-sampled")),
            _ => (None, None),
        };
        GpuReading { joules, energy_source, peak_device_bytes: s.peak_bytes }
    }
}

fn sample_loop(nvml: &Nvml, index: u32, pid: u32, stop: &AtomicBool, samples: &Mutex<Samples>) {
    let Ok(device) = nvml.device_by_index(index) else { return };
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(SAMPLE_EVERY);
        let used = device.running_compute_processes().ok().and_then(|ps| {
            ps.into_iter().find(|p| p.pid == pid).and_then(|p| match p.used_gpu_memory {
                UsedGpuMemory::Used(b) => Some(b),
                UsedGpuMemory::Unavailable => None,
            })
        });
        let power_w = device.power_usage().ok().map(|mw| f64::from(mw) / 1e3);
        let dt = last.elapsed().as_secs_f64();
        last = Instant::now();
        if let Ok(mut s) = samples.lock() {
            if let Some(b) = used {
                s.peak_bytes = Some(s.peak_bytes.map_or(b, |p| p.max(b)));
            }
            if let Some(w) = power_w {
                s.sampled_joules += w * dt;
                s.n_power += 1;
            }
        }
    }
}
