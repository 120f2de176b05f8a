//! What a process child's process uses, read from `/proc` for `status()`.

use std::time::Duration;

use crate::supervisor::ProcessUsage;

/// A process child's running process, as its proxy records it.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunningProcess {
    /// The child's init, which the supervisor waits on.
    pub(crate) pid: u32,
    /// What its confinement enforces, and what the host could not give,
    /// once the child has said.
    pub(crate) enforced: Vec<String>,
    pub(crate) missing: Vec<String>,
}

/// The usage of a running process child. The component's process is the
/// init's child.
pub(crate) fn usage(running: &RunningProcess) -> ProcessUsage {
    let pid = running.pid;
    let component = child_of(pid);
    let measured = component.unwrap_or(pid);
    ProcessUsage {
        pid,
        resident: resident(measured),
        cpu: cpu(measured),
        enforced: running.enforced.clone(),
        missing: running.missing.clone(),
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "the supervisor reads its own children's entries in /proc"
)]
fn read(path: String) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn child_of(pid: u32) -> Option<u32> {
    read(format!("/proc/{pid}/task/{pid}/children"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn resident(pid: u32) -> Option<u64> {
    let pages: u64 = read(format!("/proc/{pid}/statm"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

fn cpu(pid: u32) -> Option<Duration> {
    let stat = read(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which may hold spaces: utime and
    // stime are the 14th and 15th fields of the line, in clock ticks.
    let after_name = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    let ticks = rustix::param::clock_ticks_per_second().max(1);
    Some(Duration::from_secs_f64(
        (user + system) as f64 / ticks as f64,
    ))
}
