//! Figures read from /proc: a process' memory and CPU time, the bench's own
//! and its reaped children's CPU time, and the whole machine's, so a run can
//! say how much of the CPU went to someone else.

use crate::error::BenchError;
use procfs::process::{ClearRefs, Process};
use procfs::{Current, CurrentSI, KernelStats, LoadAverage};

/// The CPU's model name, from `/proc/cpuinfo`'s first `model name` line.
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix("model name")?.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
}

/// A process' resident memory.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Memory {
    /// Resident set now (VmRSS), KiB.
    pub rss_kib: u64,
    /// Of the resident set now, the process' own memory: heap, stacks
    /// (RssAnon), KiB.
    pub anon_kib: u64,
    /// Of the resident set now, pages of files mapped in, mostly the binary's
    /// own code: shared, and reclaimable page cache (RssFile), KiB.
    pub file_kib: u64,
    /// Peak resident set since start or the last [`reset_peak`] (VmHWM), KiB.
    pub peak_kib: u64,
    /// Threads in the process.
    pub threads: u64,
}

/// Reads a process' [`Memory`].
pub fn memory(pid: u32) -> Result<Memory, BenchError> {
    let status = process(pid)?
        .status()
        .map_err(BenchError::proc(format!("status of {pid}")))?;
    Ok(Memory {
        rss_kib: status.vmrss.unwrap_or_default(),
        anon_kib: status.rssanon.unwrap_or_default(),
        file_kib: status.rssfile.unwrap_or_default(),
        peak_kib: status.vmhwm.unwrap_or_default(),
        threads: status.threads,
    })
}

/// Resets a process' peak resident set to its current one, so the next
/// reading is the peak of what happens in between. Needs Linux 4.0; false
/// when refused (the peak then stays the peak since start).
pub fn reset_peak(pid: u32) -> bool {
    process(pid).is_ok_and(|p| p.clear_refs(ClearRefs::PeakRSS).is_ok())
}

/// CPU seconds (user + system) a process has used.
pub fn cpu_seconds(pid: u32) -> Result<f64, BenchError> {
    let stat = process(pid)?
        .stat()
        .map_err(BenchError::proc(format!("stat of {pid}")))?;
    Ok(ticks_to_seconds(stat.utime + stat.stime))
}

/// CPU seconds of this process, and of its children that have been waited for.
pub fn own_cpu_seconds() -> Result<(f64, f64), BenchError> {
    let stat = Process::myself()
        .and_then(|p| p.stat())
        .map_err(BenchError::proc("the bench itself"))?;
    let children = u64::try_from(stat.cutime + stat.cstime).unwrap_or_default();
    Ok((
        ticks_to_seconds(stat.utime + stat.stime),
        ticks_to_seconds(children),
    ))
}

/// CPU seconds the whole machine has been busy (every core, not idle or
/// waiting for I/O).
pub fn machine_busy_seconds() -> Result<f64, BenchError> {
    let total = KernelStats::current()
        .map_err(BenchError::proc("the machine (/proc/stat)"))?
        .total;
    let busy = total.user
        + total.nice
        + total.system
        + total.irq.unwrap_or_default()
        + total.softirq.unwrap_or_default()
        + total.steal.unwrap_or_default();
    Ok(ticks_to_seconds(busy))
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> Result<[f32; 3], BenchError> {
    let load = LoadAverage::current().map_err(BenchError::proc("the load average"))?;
    Ok([load.one, load.five, load.fifteen])
}

/// Cores the machine has.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn process(pid: u32) -> Result<Process, BenchError> {
    let id = i32::try_from(pid).unwrap_or(i32::MAX);
    Process::new(id).map_err(BenchError::proc(format!("process {pid}")))
}

fn ticks_to_seconds(ticks: u64) -> f64 {
    ticks as f64 / procfs::ticks_per_second() as f64
}
