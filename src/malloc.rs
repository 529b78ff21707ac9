//! glibc's malloc, tuned so that a process gives back what it frees.
//!
//! glibc serves a block of 128 KiB or more with a mapping of its own, so that freeing the block
//! returns it to the system. But each time such a block is freed, glibc raises that threshold
//! to the block's size, up to 32 MiB. A load frees many large buffers (a workbook's strings,
//! Parquet pages, record batches), so after the first file almost every buffer came from the
//! per-thread heaps instead, which keep what is freed in them. The process then grew with the
//! size of the files it read: at ten province-years a year of XLSX peaked 25 MiB higher than
//! its live data needed (see docs/benchmarks.md).
//!
//! A fixed threshold stops the climb. glibc reads its tunables only when a process starts and
//! its `mallopt` cannot be called without `unsafe` (which this workspace forbids), so the
//! binary starts itself again, once, with the tunable set in `GLIBC_TUNABLES`. A threshold
//! set by the caller is kept as it is.

/// Blocks from this size up are mapped on their own and returned when freed. 1 MiB kept the
/// load's CPU time where it was; 128 KiB (glibc's own start) cost a fifth more.
pub const MMAP_THRESHOLD: usize = 1 << 20;

const TUNABLE: &str = "glibc.malloc.mmap_threshold";

/// Set in the restarted process, so that it never starts itself again even where glibc drops
/// `GLIBC_TUNABLES` (it does for set-user-ID programs).
const RESTARTED: &str = "PLSW_MALLOC_TUNED";

#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
/// The `GLIBC_TUNABLES` to restart with, or `None` when the process must go on as it is: it was
/// restarted already, or the caller chose a threshold.
fn tunables(current: Option<&str>, restarted: bool) -> Option<String> {
    if restarted {
        return None;
    }
    let ours = format!("{TUNABLE}={MMAP_THRESHOLD}");
    match current.map(str::trim).filter(|c| !c.is_empty()) {
        None => Some(ours),
        Some(c) if c.split(':').any(|t| t.split('=').next() == Some(TUNABLE)) => None,
        Some(c) => Some(format!("{c}:{ours}")),
    }
}

/// Starts this binary again with the threshold set, unless it is set already. Returns only when
/// the process goes on as it is: tuned, on another platform, or when the restart could not be
/// made (the binary's path is unknown, or it was replaced), which costs memory, not
/// correctness.
pub fn restart_tuned() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt as _;

        let current = std::env::var("GLIBC_TUNABLES").ok();
        let restarted = std::env::var_os(RESTARTED).is_some();
        let Some(value) = tunables(current.as_deref(), restarted) else {
            return;
        };
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let arg0: std::ffi::OsString = args.next().unwrap_or_else(|| exe.clone().into_os_string());
        // `exec` returns only on failure; the process then goes on untuned.
        let _ = std::process::Command::new(&exe)
            .arg0(arg0)
            .args(args)
            .env("GLIBC_TUNABLES", value)
            .env(RESTARTED, "1")
            .exec();
    }
}

/// Says at debug level (`PLSW_LOG=plsw=debug`) whether this process runs tuned.
pub fn log_state() {
    match std::env::var_os(RESTARTED) {
        Some(_) => tracing::debug!(
            tunables = %std::env::var("GLIBC_TUNABLES").unwrap_or_default(),
            "malloc: restarted with a fixed mmap threshold"
        ),
        None => tracing::debug!("malloc: not restarted"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_is_added_to_what_the_caller_set_unless_they_chose_one() {
        assert_eq!(
            tunables(None, false).as_deref(),
            Some("glibc.malloc.mmap_threshold=1048576")
        );
        assert_eq!(
            tunables(Some(""), false).as_deref(),
            Some("glibc.malloc.mmap_threshold=1048576")
        );
        assert_eq!(
            tunables(Some("glibc.malloc.arena_max=2"), false).as_deref(),
            Some("glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=1048576")
        );
        assert_eq!(
            tunables(
                Some("glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536"),
                false
            ),
            None
        );
        // A tunable whose name only starts like ours is not ours.
        assert_eq!(
            tunables(Some("glibc.malloc.mmap_threshold_x=1"), false).as_deref(),
            Some("glibc.malloc.mmap_threshold_x=1:glibc.malloc.mmap_threshold=1048576")
        );
        assert_eq!(tunables(None, true), None);
    }
}
