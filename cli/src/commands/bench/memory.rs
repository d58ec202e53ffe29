//! Peak memory of each process: `VmHWM` ("high water mark", the largest
//! resident set the process has had) from `/proc/<pid>/status`, read once
//! the measurements are over and before the processes stop.

use anyhow::Context;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct PeakMemory {
    pub process: String,
    pub pid: u32,
    pub peak_rss_kib: u64,
}

/// `VmHWM` in KiB from the text of a `/proc/<pid>/status` file.
fn high_water_mark(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut words = line.split_whitespace().skip(1);
    let value = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(value)
}

pub fn peak(process: &str, pid: u32) -> anyhow::Result<PeakMemory> {
    let path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&path).with_context(|| format!("reading {path} ({process})"))?;
    let peak_rss_kib =
        high_water_mark(&status).with_context(|| format!("no VmHWM in {path} ({process})"))?;
    Ok(PeakMemory {
        process: process.to_owned(),
        pid,
        peak_rss_kib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_high_water_mark_is_read_in_kib() {
        let status =
            "Name:\tnats-server\nVmPeak:\t 1300000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t 19000 kB\n";
        assert_eq!(high_water_mark(status), Some(20_480));
        assert_eq!(high_water_mark("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_has_a_peak() {
        let own = peak("self", std::process::id()).unwrap();
        assert!(own.peak_rss_kib > 0);
    }
}
