//! The few process-level system calls the bench needs: CPU pinning, the
//! clock tick, and the open-file limit.

use std::io;

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Restricts the calling thread (and the threads and processes it starts
/// afterwards) to one CPU (`man 2 sched_setaffinity`).
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET only write into it,
    // and sched_setaffinity reads `size_of` bytes of it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(
            0,
            std::mem::size_of::<libc::cpu_set_t>(),
            &set,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Sets this process's nice value (`man 2 setpriority`); processes it
/// starts afterwards inherit it.
pub fn set_nice(nice: i32) -> io::Result<()> {
    // SAFETY: setpriority has no memory-safety preconditions.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The CPUs this thread may run on (`man 2 sched_getaffinity`).
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: as in pin_to_cpu; CPU_ISSET only reads the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(
            0,
            std::mem::size_of::<libc::cpu_set_t>(),
            &mut set,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok((0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect())
    }
}

/// The unit of /proc/pid/stat's utime and stime (`man 5 proc`: clock ticks,
/// `sysconf(_SC_CLK_TCK)`, 100 on Linux).
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

/// Raises this process's RLIMIT_NOFILE to at least `needed` descriptors
/// (servers started afterwards inherit it). The soft limit can go up to the
/// hard one; raising the hard one needs CAP_SYS_RESOURCE (`man 2 setrlimit`).
pub fn raise_open_files(needed: u64) -> Result<u64, String> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(|e| format!("getrlimit: {e}"))?;
    if soft >= needed {
        return Ok(soft);
    }
    let new_hard = hard.max(needed);
    setrlimit(Resource::RLIMIT_NOFILE, needed, new_hard)
        .map_err(|err| format!("setrlimit RLIMIT_NOFILE to {needed} (soft {soft}, hard {hard}): {err}"))?;
    Ok(needed)
}
