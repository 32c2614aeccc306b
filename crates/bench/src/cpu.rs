//! CPU time of this process and of the servers it drives, read from
//! `/proc/<pid>/stat` (user + system, all threads). Sampled at the start
//! and end of the measured part of a run, it tells whether the load
//! generator or the server was the limit, and how much CPU each server
//! spends per operation: on a small machine the generator can saturate its
//! core before the server does, and then ops/s says little about the server.

use anyhow::{Context, Result};

/// CPU seconds used so far by `pid` (`None`: this process).
pub fn cpu_seconds(pid: Option<u32>) -> Result<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // count fields after its closing parenthesis.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .with_context(|| format!("unexpected format of {path}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> Result<f64> {
        let v: u64 = fields
            .get(i)
            .with_context(|| format!("{path} is too short"))?
            .parse()
            .with_context(|| format!("field {} of {path}", i + 3))?;
        Ok(v as f64)
    };
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the name.
    Ok((tick(11)? + tick(12)?) / USER_HZ)
}

/// The kernel's USER_HZ, in which /proc reports CPU times: 100 on every
/// Linux architecture this runs on (it is fixed by the kernel ABI).
const USER_HZ: f64 = 100.0;

/// CPU seconds of this process and of the servers at one instant.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub client: f64,
    pub servers: f64,
}

pub fn sample(servers: &[u32]) -> Result<Sample> {
    let mut total = 0.0;
    for pid in servers {
        total += cpu_seconds(Some(*pid))?;
    }
    Ok(Sample {
        client: cpu_seconds(None)?,
        servers: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_uses_cpu_time_that_grows() {
        let before = cpu_seconds(None).unwrap();
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(200) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let after = cpu_seconds(None).unwrap();
        assert!(after - before >= 0.1, "{before} -> {after}");
        let by_pid = cpu_seconds(Some(std::process::id())).unwrap();
        assert!(by_pid >= after);
    }

    #[test]
    fn a_missing_process_is_an_error() {
        assert!(cpu_seconds(Some(u32::MAX)).is_err());
    }
}
