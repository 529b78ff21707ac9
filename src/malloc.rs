//! glibc's malloc, tuned so that a process gives back what it frees.
//!
//! glibc serves a block of 128 KiB or more with a mapping of its own, so that freeing the block
//! returns it to the system. But each time such a block is freed, glibc raises that threshold
//! to the block's size, up to 32 MiB. A load frees many large buffers (a workbook's strings,
//! Parquet pages, record batches), so after the first file almost every buffer came from the
//! per-thread heaps instead, which keep what is freed in them. The process then grew with the
//! size of the files it read: at ten province-years a year of XLSX peaked 25 MiB higher than
//! its live data needed (see docs/benchmarks-history.md).
//!
//! A fixed threshold stops the climb; beside it the trim threshold is fixed at twice as much,
//! as glibc pairs them ([`TRIM_THRESHOLD`]). glibc reads its tunables only when a process starts
//! and its `mallopt` cannot be called without `unsafe` (which this workspace forbids), so on
//! Linux with glibc the binary starts itself again, once, with the tunables added to
//! `GLIBC_TUNABLES`. A threshold the caller chose (in `GLIBC_TUNABLES` or glibc's older
//! `MALLOC_MMAP_THRESHOLD_` and `MALLOC_TRIM_THRESHOLD_`) is kept, and `PLSW_MALLOC_TUNED=1`
//! skips the restart (for a profiler that follows only the first program a process runs).

/// Blocks from this size up are mapped on their own and returned when freed. 1 MiB cost a load
/// 1-5% of its wall time; 128 KiB (glibc's own start) cost a fifth more, and 4 MiB kept 5 MiB
/// more at ten province-years.
pub const MMAP_THRESHOLD: usize = 1 << 20;

/// Free memory at the top of a heap is given back from this size up. A fixed mmap threshold
/// also fixes this one at glibc's start, 128 KiB (glibc raises the two together, the trim
/// threshold to twice the other): the threads' heaps were then shrunk whenever a large block
/// freed at their top left more than that, and grown again for the next, all through a load:
/// 1,268 `mprotect` calls and their page faults for a year of GB18030 cases.
/// Twice the mmap threshold, as glibc pairs them, took 2-5% off a CSV load's CPU time for 2
/// MiB more at its peak (docs/benchmarks-history.md, session 17).
pub const TRIM_THRESHOLD: usize = 2 * MMAP_THRESHOLD;

const TUNABLE: &str = "glibc.malloc.mmap_threshold";
const TRIM_TUNABLE: &str = "glibc.malloc.trim_threshold";

/// Set in the restarted process, so that it never starts itself again even where glibc drops
/// `GLIBC_TUNABLES` (it does for set-user-ID programs); set by hand, it skips the restart.
const RESTARTED: &str = "PLSW_MALLOC_TUNED";

/// What [`restart_tuned`] found, for [`log_state`].
#[derive(Debug)]
pub enum Malloc {
    /// This process is the restarted one (or `PLSW_MALLOC_TUNED` was set by hand).
    Restarted,
    /// The caller chose a threshold, or gave `GLIBC_TUNABLES` that is not text: left alone.
    CallersChoice,
    /// Not Linux with glibc, or `plsw bench` (its floors run on glibc's defaults).
    Untouched,
    /// The restart could not be made; the process goes on untuned, which costs memory, not
    /// correctness.
    Failed(String),
}

/// The `GLIBC_TUNABLES` to restart with, or `None` when the caller chose the mmap threshold. A
/// trim threshold the caller chose (in `GLIBC_TUNABLES`, or in glibc's older
/// `MALLOC_TRIM_THRESHOLD_`: `legacy_trim`) is kept, and ours then left out.
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
fn tunables(current: Option<&str>, legacy_threshold: bool, legacy_trim: bool) -> Option<String> {
    if legacy_threshold {
        return None;
    }
    let current = current.unwrap_or("").trim().trim_matches(':');
    // glibc reads `name=value` pairs separated by colons; an entry naming one of ours, whatever
    // its value, is the caller's choice.
    let named = |tunable: &str| {
        current
            .split(':')
            .any(|t| t.split('=').next().map(str::trim) == Some(tunable))
    };
    if named(TUNABLE) {
        return None;
    }
    let mut all: Vec<String> = Vec::new();
    if !current.is_empty() {
        all.push(current.to_string());
    }
    all.push(format!("{TUNABLE}={MMAP_THRESHOLD}"));
    // glibc reads `GLIBC_TUNABLES` first and then skips an older variable whose tunable is set
    // already: ours would hide the caller's `MALLOC_TRIM_THRESHOLD_`.
    if !named(TRIM_TUNABLE) && !legacy_trim {
        all.push(format!("{TRIM_TUNABLE}={TRIM_THRESHOLD}"));
    }
    Some(all.join(":"))
}

/// Whether `exe` is the dynamic loader itself (`ld-linux-x86-64.so.2 ./plsw ...`): started
/// again, it would take the first argument for the program.
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
fn is_loader(exe: &std::path::Path) -> bool {
    exe.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("ld-") || n.contains(".so"))
}

/// Starts this binary again with the threshold set, unless it is set already. Returns only when
/// the process goes on as it is, saying why.
pub fn restart_tuned() -> Malloc {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt as _;

        if std::env::var_os(RESTARTED).is_some() {
            name_process();
            return Malloc::Restarted;
        }
        let current = match std::env::var_os("GLIBC_TUNABLES") {
            None => None,
            Some(v) => match v.into_string() {
                Ok(s) => Some(s),
                Err(_) => return Malloc::CallersChoice,
            },
        };
        let legacy = std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some();
        let legacy_trim = std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_some();
        let Some(value) = tunables(current.as_deref(), legacy, legacy_trim) else {
            return Malloc::CallersChoice;
        };
        let exe = match std::env::current_exe() {
            Ok(exe) if !is_loader(&exe) => exe,
            Ok(exe) => return Malloc::Failed(format!("run by the loader {}", exe.display())),
            Err(e) => return Malloc::Failed(format!("the binary's path: {e}")),
        };
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
        // /proc/self/exe is this very binary, even if its path was since replaced or removed.
        // `exec` returns only on failure.
        let e = std::process::Command::new("/proc/self/exe")
            .arg0(arg0)
            .args(args)
            .env("GLIBC_TUNABLES", value)
            .env(RESTARTED, "1")
            .exec();
        Malloc::Failed(format!("starting {} again: {e}", exe.display()))
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    Malloc::Untouched
}

/// Started again from /proc/self/exe, the process is named `exe` (in `ps`, `top`, `pkill`): it
/// takes back its binary's own name, cut as the kernel cuts it (15 bytes). Best effort.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn name_process() {
    if let Some(name) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_name().map(|n| n.to_os_string()))
    {
        let name = name.as_encoded_bytes();
        let _ = std::fs::write("/proc/self/comm", &name[..name.len().min(15)]);
    }
}

/// The process's name as `ps` shows it, where the system tells it.
fn process_name() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .map(|n| n.trim_end().to_string())
        .unwrap_or_default()
}

/// Says at debug level (`PLSW_LOG=plsw=debug`) how this process's malloc runs.
pub fn log_state(state: &Malloc) {
    let tunables = std::env::var_os("GLIBC_TUNABLES");
    let tunables = tunables.as_deref().map(|t| t.to_string_lossy());
    let tunables = tunables.as_deref().unwrap_or("");
    match state {
        Malloc::Restarted => tracing::debug!(
            tunables,
            process = process_name(),
            "malloc: restart marker {RESTARTED} set; glibc tunables as shown"
        ),
        Malloc::CallersChoice => {
            tracing::debug!(tunables, "malloc: the caller chose the mmap threshold")
        }
        Malloc::Untouched => tracing::debug!("malloc: glibc's defaults"),
        Malloc::Failed(why) => {
            tracing::debug!("malloc: not restarted, glibc's defaults ({why})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_is_added_to_what_the_caller_set_unless_they_chose_one() {
        let ours = "glibc.malloc.mmap_threshold=1048576:glibc.malloc.trim_threshold=2097152";
        assert_eq!(tunables(None, false, false).as_deref(), Some(ours));
        assert_eq!(tunables(Some(" "), false, false).as_deref(), Some(ours));
        assert_eq!(
            tunables(Some("glibc.malloc.arena_max=2"), false, false).as_deref(),
            Some(format!("glibc.malloc.arena_max=2:{ours}").as_str())
        );
        assert_eq!(
            tunables(Some("glibc.malloc.arena_max=2:"), false, false).as_deref(),
            Some(format!("glibc.malloc.arena_max=2:{ours}").as_str())
        );
        // A trim threshold of the caller's is kept, in either form, and the mmap threshold added.
        assert_eq!(
            tunables(None, false, true).as_deref(),
            Some("glibc.malloc.mmap_threshold=1048576")
        );
        assert_eq!(
            tunables(Some("glibc.malloc.trim_threshold=0"), false, false).as_deref(),
            Some("glibc.malloc.trim_threshold=0:glibc.malloc.mmap_threshold=1048576")
        );
        assert_eq!(
            tunables(
                Some("glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536"),
                false,
                false
            ),
            None
        );
        // A tunable whose name only starts like ours is not ours.
        assert_eq!(
            tunables(Some("glibc.malloc.mmap_threshold_x=1"), false, false).as_deref(),
            Some(format!("glibc.malloc.mmap_threshold_x=1:{ours}").as_str())
        );
        // glibc's older variable for the same threshold is the caller's choice too.
        assert_eq!(tunables(None, true, false), None);
    }

    #[test]
    fn the_dynamic_loader_is_not_started_again() {
        use std::path::Path;
        assert!(is_loader(Path::new("/lib64/ld-linux-x86-64.so.2")));
        assert!(is_loader(Path::new("/usr/lib/x86_64-linux-gnu/ld.so")));
        assert!(!is_loader(Path::new("/work/main/target/release/plsw")));
        assert!(!is_loader(Path::new("/usr/local/bin/plsw")));
    }
}
