//! `plsw bench` (`make bench`): ingest, transform and query at one or more scales, each figure
//! beside a floor measured in the same run, so that the report is ratios, not only seconds.
//!
//! - **Ingest**: a year of case files of each format (UTF-8 CSV: mediation; GB18030 CSV: legal
//!   aid; XLSX: notarization) into an empty warehouse by a child `plsw ingest cases`, timed, with
//!   its peak RSS (the kernel's high-water mark). Floor: the same files read into record batches with no validation
//!   (arrow-csv with every column as text; GB18030 decoded first; calamine for XLSX).
//! - **Transform**: `plsw transform --full` on the scale's warehouse, and an incremental run
//!   after one more day's hotline file (held out of the warehouse). Floor: a bare DataFusion scan
//!   with one GROUP BY over each table the models read.
//! - **API**: indicator lookups through a real socket at 1, 16 and 64 concurrent clients (p50,
//!   p99, throughput), beside `/health` on the same server; one ad-hoc SQL GROUP BY over the
//!   largest table beside the same statement in a bare session.
//!
//! Data and loaded warehouses are kept under `--dir` between runs; results go to
//! `--dir/results/<date>.json` with a description of the machine.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

/// A run of a child `plsw`: wall time and peak resident memory.
struct Child {
    wall: Duration,
    max_rss_kib: i64,
    /// Of the resident memory, the pages mapped from files as the child exited: the binary's
    /// code, read-only data and libraries, which do not grow with the data. (A peak has no
    /// split of its own; file-mapped pages are only added as code runs, so the count at the
    /// exit is the most that the peak can hold.)
    code_kib: Option<i64>,
    /// The CPU time of all its threads, user and system, as it exited (10 ms steps).
    cpu: Option<Duration>,
    stdout: String,
}

/// Where a child `plsw` writes its peak RSS and its file-mapped pages (KiB) as it exits (see
/// [`report_peak_rss`]).
const PEAK_RSS_FILE: &str = "PLSW_PEAK_RSS_FILE";

/// The kernel's high-water mark of this process's resident memory (`VmHWM`), and its resident
/// pages mapped from files (`RssFile`), in KiB.
fn own_peak_rss_kib() -> Option<(i64, Option<i64>)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    Some((vm_hwm_kib(&status)?, status_kib(&status, "RssFile:")))
}

fn vm_hwm_kib(status: &str) -> Option<i64> {
    status_kib(status, "VmHWM:")
}

fn status_kib(status: &str, field: &str) -> Option<i64> {
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// The CPU time of this process's threads, living and ended, user and system: fields 14 and 15
/// of `/proc/self/stat` (after the command's name, which may hold spaces), in clock ticks of
/// 1/100 s (`USER_HZ`, 100 on every Linux the project runs on).
fn cpu_of_stat(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 10))
}

/// Called by `main` once a command has run: when the bench asked for it, writes the process's
/// peak RSS, its file-mapped pages and its CPU time to the file it named, as `key=value` words.
/// (Sampled from outside every 10 ms, the peak missed whatever the last milliseconds added:
/// about 11 MiB at the end of a load, its commit.)
pub fn report_peak_rss() {
    if let (Some(path), Some((peak, code))) = (std::env::var_os(PEAK_RSS_FILE), own_peak_rss_kib())
    {
        let mut report = format!("peak_kib={peak}");
        if let Some(code) = code {
            report += &format!(" code_kib={code}");
        }
        let cpu = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| cpu_of_stat(&s));
        if let Some(cpu) = cpu {
            report += &format!(" cpu_ms={}", cpu.as_millis());
        }
        let _ = std::fs::write(path, report);
    }
}

/// A child's report (see [`report_peak_rss`]): the value of `key`.
fn reported(report: &str, key: &str) -> Option<i64> {
    report
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

/// Runs this binary with `args` against the warehouse `wh`. Its peak RSS is the kernel's
/// high-water mark (`VmHWM`), which the child writes as it exits (see [`report_peak_rss`]), and
/// which is also read from /proc/PID/status every 10 ms while it runs (for a child that fails).
fn child(wh: &Path, args: &[&str]) -> anyhow::Result<Child> {
    let exe = std::env::current_exe()?;
    let peak_file = tempfile::NamedTempFile::new()?.into_temp_path();
    let t0 = Instant::now();
    let mut child = std::process::Command::new(exe)
        .args(args)
        .env("PLSW_WAREHOUSE", wh)
        .env("PLSW_LOG", "warn")
        // A measured command tunes its malloc as it does in service (crate::malloc).
        .env_remove("PLSW_MALLOC_TUNED")
        .env(PEAK_RSS_FILE, &*peak_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()?;
    // The pipe is read on a thread so that a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let status_file = format!("/proc/{}/status", child.id());
    // The child is waited for on a thread of its own, which takes the time as it ends: timed by
    // the loop below, a run counted up to 10 ms after its end (5 ms, 1%, of a GB18030 year).
    let (ended, end) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = child.wait();
        let _ = ended.send(Instant::now());
        status
    });
    let mut max_rss_kib = 0i64;
    let end = loop {
        if let Some(kib) = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|text| vm_hwm_kib(&text))
        {
            max_rss_kib = max_rss_kib.max(kib);
        }
        match end.recv_timeout(Duration::from_millis(10)) {
            Ok(at) => break at,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            // The waiter stopped without a time: it failed, which its result says.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break Instant::now(),
        }
    };
    let status = waiter
        .join()
        .map_err(|_| anyhow::anyhow!("waiting for plsw {} panicked", args.join(" ")))??;
    let wall = end - t0;
    let report = std::fs::read_to_string(&peak_file).unwrap_or_default();
    if let Some(kib) = reported(&report, "peak_kib") {
        max_rss_kib = max_rss_kib.max(kib);
    }
    let code_kib = reported(&report, "code_kib");
    let cpu = reported(&report, "cpu_ms").map(|ms| Duration::from_millis(ms.max(0) as u64));
    let stdout = reader.join().unwrap_or_default();
    anyhow::ensure!(
        status.success(),
        "plsw {} failed ({status})",
        args.join(" ")
    );
    Ok(Child {
        wall,
        max_rss_kib,
        code_kib,
        cpu,
        stdout,
    })
}

fn files(dir: &Path, suffix: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    Ok(out)
}

/// Reads CSV text into record batches with every column as text: the floor of an ingest.
fn arrow_csv_rows(bytes: &[u8]) -> anyhow::Result<usize> {
    use datafusion::arrow::csv::ReaderBuilder;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let header_end = text.iter().position(|b| *b == b'\n').unwrap_or(text.len());
    let header = String::from_utf8_lossy(&text[..header_end]);
    let fields: Vec<Field> = header
        .trim_end_matches('\r')
        .split(',')
        .enumerate()
        .map(|(i, _)| Field::new(format!("c{i}"), DataType::Utf8, true))
        .collect();
    let reader = ReaderBuilder::new(std::sync::Arc::new(Schema::new(fields)))
        .with_header(true)
        .with_batch_size(64 * 1024)
        .build(std::io::Cursor::new(text))?;
    let mut rows = 0;
    for b in reader {
        rows += b?.num_rows();
    }
    Ok(rows)
}

fn floor_rows(path: &Path) -> anyhow::Result<usize> {
    let bytes = std::fs::read(path)?;
    if path.extension().is_some_and(|e| e == "xlsx") {
        use calamine::{open_workbook_from_rs, Reader, Xlsx};
        let mut wb: Xlsx<_> = open_workbook_from_rs(std::io::Cursor::new(bytes))?;
        let sheet = wb.worksheet_range_at(0).context("no sheet")??;
        let mut rows = 0;
        for row in sheet.rows().skip(1) {
            // Each cell as text, as the ingest sees it.
            let _cells: Vec<String> = row.iter().map(|c| c.to_string()).collect();
            rows += 1;
        }
        return Ok(rows);
    }
    if std::str::from_utf8(&bytes).is_ok() {
        return arrow_csv_rows(&bytes);
    }
    let (text, _, _) = encoding_rs::GB18030.decode(&bytes);
    arrow_csv_rows(text.as_bytes())
}

/// How far apart the machine's cores are at the moment: the mean round trip, in nanoseconds, of
/// a cache line handed back and forth between two threads, each spinning on its own core. A
/// load passes its records, batches and buffers from thread to thread, and so pays for each
/// line that crosses from one core to the other; the floor runs on one thread and does not. On
/// the virtual machine of the benches the host moved the two cores between about 80 ns apart
/// and about 350 ns apart, for stretches of seconds, and a GB18030 load took a quarter more CPU
/// time whenever they were far apart, while the floors and busy loops on either core did not
/// change (`docs/benchmarks.md`, Where the time goes). Each load is timed between two probes.
fn core_round_trip_ns(trips: u64) -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    let line = std::sync::Arc::new(AtomicU64::new(0));
    let other = std::sync::Arc::clone(&line);
    // The other thread answers each odd value with the even one after it.
    let echo = std::thread::spawn(move || {
        for i in 0..trips {
            while other.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            other.store(2 * i + 2, Ordering::Release);
        }
    });
    // The other thread's start is not timed: the first trip waits for it.
    line.store(1, Ordering::Release);
    while line.load(Ordering::Acquire) != 2 {
        std::hint::spin_loop();
    }
    let t0 = Instant::now();
    for i in 1..trips {
        line.store(2 * i + 1, Ordering::Release);
        while line.load(Ordering::Acquire) != 2 * i + 2 {
            std::hint::spin_loop();
        }
    }
    let elapsed = t0.elapsed();
    let _ = echo.join();
    elapsed.as_nanos() as f64 / (trips - 1).max(1) as f64
}

/// Round trips of a probe: 100,000 take 8 ms with the cores near, 35 ms with them far apart.
const PROBE_TRIPS: u64 = 100_000;

/// A load ran with the cores near when both probes around it found them under this. The probes
/// of session 20 fell around 60-70, 100-110 and 140-150 ns, or 230-420 ns, nothing between.
const NEAR_NS: f64 = 200.0;

/// Loads of each ingest bench, each between two runs of the floor: its figures are the
/// medians. A load's ratio is to the mean of the floors just before and just after it, so that
/// a slow stretch of the machine (the floors of one run moved by 30%, in stretches of seconds)
/// weighs on a load and its floor alike, whichever of the two it starts or ends in; the formats
/// take turns ([`bench_ingest`]). Every run is kept in the JSON.
const INGEST_RUNS: usize = 5;

/// The lowest and the highest of some figures, as a JSON pair.
fn lowest_highest(v: &[f64]) -> serde_json::Value {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    json!([lo, hi])
}

/// The median of some figures (the mean of the middle two for an even count; NaN for none). A
/// figure a run could not give (NaN: no code size reported, say) is left out.
fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Ingest of one format: child `plsw ingest cases` into an empty warehouse against the floor,
/// one load per [`IngestBench::run`].
struct IngestBench {
    label: &'static str,
    inputs: Vec<PathBuf>,
    wh: PathBuf,
    args: Vec<String>,
    bytes: u64,
    rows: usize,
    runs: Vec<serde_json::Value>,
}

impl IngestBench {
    fn new(label: &'static str, inputs: Vec<PathBuf>, work: &Path) -> anyhow::Result<Self> {
        let bytes: u64 = inputs
            .iter()
            .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum();
        // Both runs read the files from the page cache: the first read of a file from disk
        // would count against whichever ran first (the floors moved by 50% between runs before
        // this).
        for p in &inputs {
            std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        }
        let mut args = vec!["ingest".to_string(), "cases".to_string()];
        args.extend(inputs.iter().map(|p| p.display().to_string()));
        Ok(IngestBench {
            label,
            wh: work.join(format!("ingest-{}", label.replace(' ', "-"))),
            inputs,
            args,
            bytes,
            rows: 0,
            runs: Vec::with_capacity(INGEST_RUNS),
        })
    }

    /// The floor's seconds and the rows it read.
    fn floor(&self) -> anyhow::Result<(f64, usize)> {
        let t0 = Instant::now();
        let mut rows = 0;
        for p in &self.inputs {
            rows += floor_rows(p)?;
        }
        Ok((t0.elapsed().as_secs_f64(), rows))
    }

    /// One load, between a floor just before it and one just after.
    fn run(&mut self) -> anyhow::Result<()> {
        let (before, rows) = self.floor()?;
        self.rows = rows;
        let _ = std::fs::remove_dir_all(&self.wh);
        // The warehouse exists before the timed load, as in service: creating its tables is not
        // part of an ingest.
        child(&self.wh, &["sql", "SELECT 1"])?;
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let cores_before = core_round_trip_ns(PROBE_TRIPS);
        let run = child(&self.wh, &args)?;
        let cores_after = core_round_trip_ns(PROBE_TRIPS);
        let _ = std::fs::remove_dir_all(&self.wh);
        let (after, _) = self.floor()?;
        let mean_floor = (before + after) / 2.0;
        let secs = run.wall.as_secs_f64();
        let code = run.code_kib.map_or(f64::NAN, |c| c as f64 / 1024.0);
        self.runs.push(json!({
            "floor_before_seconds": before,
            "floor_after_seconds": after,
            "floor_seconds": mean_floor,
            "seconds": secs,
            // All the load's threads (the floor runs on one: its CPU time is its seconds).
            "cpu_seconds": run.cpu.map_or(f64::NAN, |c| c.as_secs_f64()),
            "ratio_to_floor": secs / mean_floor,
            "peak_rss_mib": run.max_rss_kib as f64 / 1024.0,
            "code_mib": code,
            "data_peak_mib": run.max_rss_kib as f64 / 1024.0 - code,
            "core_round_trip_ns": [cores_before, cores_after],
        }));
        Ok(())
    }

    /// The probes' round trips of a run (none in a result written before them).
    fn probes(run: &serde_json::Value) -> Vec<f64> {
        run["core_round_trip_ns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_f64)
            .collect()
    }

    fn core_range(&self) -> serde_json::Value {
        let all: Vec<f64> = self.runs.iter().flat_map(Self::probes).collect();
        if all.is_empty() {
            return serde_json::Value::Null;
        }
        lowest_highest(&all)
    }

    /// The median ratio of the loads whose probes both found the cores near (`near`), or of the
    /// others, and how many loads that is.
    fn ratios(&self, near: bool) -> serde_json::Value {
        let ratios: Vec<f64> = self
            .runs
            .iter()
            .filter(|r| {
                let p = Self::probes(r);
                !p.is_empty() && p.iter().all(|ns| *ns < NEAR_NS) == near
            })
            .filter_map(|r| r["ratio_to_floor"].as_f64())
            .collect();
        json!({ "loads": ratios.len(), "median": median(ratios) })
    }

    /// The medians of the runs, with their ranges and the runs themselves.
    fn summary(&self) -> serde_json::Value {
        let of = |key: &str| -> Vec<f64> {
            self.runs
                .iter()
                .map(|r| r[key].as_f64().unwrap_or(f64::NAN))
                .collect()
        };
        let range = |key: &str| lowest_highest(&of(key));
        let secs = median(of("seconds"));
        json!({
            "format": self.label,
            "files": self.inputs.len(),
            "rows": self.rows,
            "mb": self.bytes as f64 / 1e6,
            "seconds": secs,
            "cpu_seconds": median(of("cpu_seconds")),
            "rows_per_s": self.rows as f64 / secs,
            "mb_per_s": self.bytes as f64 / 1e6 / secs,
            "peak_rss_mib": median(of("peak_rss_mib")),
            "peak_rss_mib_range": range("peak_rss_mib"),
            // Of the peak: the pages mapped from the binary (the same at every scale, but by 20
            // MiB more or less from one run to another, as the page cache holds the binary),
            // and the rest, the memory that the data takes.
            "code_mib": median(of("code_mib")),
            "data_peak_mib": median(of("data_peak_mib")),
            "floor_seconds": median(of("floor_seconds")),
            // The median of the loads' ratios, each to the floors on either side of it.
            "ratio_to_floor": median(of("ratio_to_floor")),
            "ratio_to_floor_range": range("ratio_to_floor"),
            "core_round_trip_ns_range": self.core_range(),
            // For information: the loads with the cores near and the others, apart.
            "ratio_to_floor_cores_near": self.ratios(true),
            "ratio_to_floor_cores_far": self.ratios(false),
            "runs": self.runs,
        })
    }
}

/// [`INGEST_RUNS`] loads of each format, in rounds of one load of each: a stretch of the
/// machine's slowness (it raised a load's own CPU time by a third for a minute at a time) then
/// falls on a run or two of a format, which the median leaves out, rather than on all of them.
fn bench_ingest(mut formats: Vec<IngestBench>) -> anyhow::Result<serde_json::Value> {
    for _ in 0..INGEST_RUNS {
        for f in &mut formats {
            f.run()?;
        }
    }
    Ok(formats.iter().map(IngestBench::summary).collect())
}

/// The scale's data and its loaded warehouse (everything but the held-out last hotline day),
/// made once and kept.
fn prepare(dir: &Path, scale: f64) -> anyhow::Result<(PathBuf, PathBuf, PathBuf)> {
    let data = dir.join(format!("scale-{scale}"));
    if !data.join("README.txt").exists() {
        eprintln!("bench: generating scale {scale} into {}", data.display());
        crate::generate::run(&crate::generate::Args {
            out: data.clone(),
            year: 2025,
            scale,
            seed: 1,
            cities: Vec::new(),
        })?;
    }
    let hotline = files(&data.join("hotline"), ".csv")?;
    let held_out = hotline.last().context("no hotline files")?.clone();
    let wh = data.join("warehouse");
    if !wh.join(".complete").exists() {
        eprintln!("bench: loading scale {scale} into {}", wh.display());
        let _ = std::fs::remove_dir_all(&wh);
        let s = |p: &Path| p.display().to_string();
        let days: Vec<String> = hotline[..hotline.len() - 1].iter().map(|p| s(p)).collect();
        let mut args = vec!["ingest", "hotline"];
        args.extend(days.iter().map(String::as_str));
        child(&wh, &args)?;
        child(&wh, &["ingest", "cases", &s(&data.join("cases"))])?;
        for feed in ["platforms", "staff"] {
            for f in files(&data.join(feed), ".csv")? {
                let as_of = f
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                child(&wh, &["ingest", feed, "--as-of", &as_of, &s(&f)])?;
            }
        }
        child(&wh, &["ingest", "funding", &s(&data.join("funding"))])?;
        child(&wh, &["ingest", "population", &s(&data.join("population"))])?;
        let up = crate::upstream::Upstream::from_dir(&data.join("work_orders"))?;
        let running = up.spawn();
        child(&wh, &["pull", "work-orders", "--url", &running.url()])?;
        drop(running);
        child(&wh, &["transform"])?;
        std::fs::write(wh.join(".complete"), "")?;
    }
    Ok((data, wh, held_out))
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), &target)?;
        }
    }
    Ok(())
}

/// The floor of a transform: one GROUP BY over each table the models read, in a bare session.
async fn transform_floor(wh: &Path) -> anyhow::Result<Duration> {
    let w = plsw_store::Warehouse::open(&wh.display().to_string()).await?;
    let ctx = w.raw_context().await?;
    let t0 = Instant::now();
    for sql in [
        "SELECT seat_city_code, count(*), count(answered_at) FROM hotline_calls GROUP BY 1",
        "SELECT status, count(*), max(updated_at) FROM work_order_versions GROUP BY 1",
        "SELECT case_type, count(*), max(accepted_on) FROM cases GROUP BY 1",
        "SELECT level, count(*) FROM platforms GROUP BY 1",
        "SELECT role, count(DISTINCT staff_id) FROM staff GROUP BY 1",
        "SELECT year, sum(amount_yuan) FROM funding GROUP BY 1",
        "SELECT year, sum(population) FROM population GROUP BY 1",
    ] {
        ctx.sql(sql).await?.collect().await?;
    }
    Ok(t0.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// `clients` tasks asking `urls` in turn for `for_how_long`: (p50 ms, p99 ms, requests/s).
async fn load(
    client: &reqwest::Client,
    urls: &[String],
    token: &str,
    clients: usize,
    for_how_long: Duration,
) -> anyhow::Result<(f64, f64, f64)> {
    let deadline = Instant::now() + for_how_long;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = client.clone();
        let urls = urls.to_vec();
        let auth = format!("Bearer {token}");
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = c * 7;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let r = client
                    .get(&urls[i % urls.len()])
                    .header("authorization", &auth)
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "{}", r.status());
                r.bytes().await?;
                lat.push(t0.elapsed());
                i += 1;
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let t0 = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = t0.elapsed().max(for_how_long);
    all.sort();
    Ok((
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.len() as f64 / elapsed.as_secs_f64(),
    ))
}

/// Open loop: `rate` requests per second spread over `connections` tasks, each latency counted
/// from the moment its request was due (a late send counts against the server, so a stall
/// cannot hide itself). Returns (p50 ms, p99 ms, achieved requests/s).
async fn paced(
    client: &reqwest::Client,
    urls: &[String],
    token: &str,
    rate: f64,
    connections: usize,
    for_how_long: Duration,
) -> anyhow::Result<(f64, f64, f64)> {
    let period = Duration::from_secs_f64(connections as f64 / rate);
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let end = start + for_how_long;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let client = client.clone();
        let urls = urls.to_vec();
        let auth = format!("Bearer {token}");
        // Staggered, so that the connections do not fire together.
        let first = start + period.mul_f64(c as f64 / connections as f64);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut due = first;
            let mut i = c * 7;
            while due < end {
                tokio::time::sleep_until(due).await;
                let r = client
                    .get(&urls[i % urls.len()])
                    .header("authorization", &auth)
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "{}", r.status());
                r.bytes().await?;
                lat.push(due.elapsed());
                due += period;
                i += 1;
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = (tokio::time::Instant::now() - start).max(for_how_long);
    all.sort();
    Ok((
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.len() as f64 / elapsed.as_secs_f64(),
    ))
}

async fn bench_api(wh_dir: &Path, seconds: u64) -> anyhow::Result<serde_json::Value> {
    let wh = plsw_store::Warehouse::open(&wh_dir.display().to_string()).await?;
    let (token, _) = plsw_api::tokens::create(
        &wh,
        "sfj",
        plsw_api::tokens::Role::Analyst,
        plsw_api::tokens::Scope::Province,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let app = plsw_api::app(plsw_api::AppState::new(wh, plsw_api::Limits::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()?;
    // What dashboards ask: one indicator of one city for one quarter, across ids and places.
    let ids = [
        "hotline.answer_rate",
        "coverage.township_build_rate",
        "workorders.on_time_rate",
        "staff.notary_blank",
        "funding.in_budget_share",
    ];
    let cities: Vec<String> = plsw_store::Divisions::builtin()
        .codes(&plsw_schemas::tables::CITIES)
        .map(String::from)
        .collect();
    let mut urls = Vec::new();
    for id in ids {
        for c in &cities {
            for q in ["2025Q1", "2025Q2", "2025Q3", "2025Q4"] {
                urls.push(format!(
                    "{base}/v1/indicators?indicator={id}&scope=city&code={c}&quarter={q}"
                ));
            }
        }
    }
    // Warm: every URL once (the first answers compute; later ones come from the cache).
    let t0 = Instant::now();
    for u in &urls {
        client
            .get(u)
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await?
            .error_for_status()?;
    }
    let warm = t0.elapsed().as_secs_f64() / urls.len() as f64 * 1000.0;
    let health = vec![format!("{base}/health")];
    let mut levels = Vec::new();
    for clients in [1usize, 16, 64] {
        let (p50, p99, rps) = load(
            &client,
            &urls,
            &token,
            clients,
            Duration::from_secs(seconds),
        )
        .await?;
        let (h50, h99, hrps) =
            load(&client, &health, &token, clients, Duration::from_secs(2)).await?;
        levels.push(json!({
            "clients": clients,
            "p50_ms": p50, "p99_ms": p99, "requests_per_s": rps,
            "floor_health_p50_ms": h50, "floor_health_p99_ms": h99, "floor_health_requests_per_s": hrps,
        }));
    }
    // The target's load: 2,000 lookups a second, open loop, over 16 connections.
    let (p50, p99, rps) = paced(
        &client,
        &urls,
        &token,
        2000.0,
        16,
        Duration::from_secs(seconds),
    )
    .await?;
    let at_2000 = json!({ "target_rate": 2000, "connections": 16, "p50_ms": p50, "p99_ms": p99, "achieved_per_s": rps });
    // One ad-hoc GROUP BY over the largest table, through the API and in a bare session.
    let sql = "SELECT case_type, outcome, count(*) AS n FROM cases_current GROUP BY 1, 2";
    let mut api_times = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        client
            .post(format!("{base}/v1/sql"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(json!({ "sql": sql }).to_string())
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        api_times.push(t0.elapsed());
    }
    api_times.sort();
    let w = plsw_store::Warehouse::open(&wh_dir.display().to_string()).await?;
    let ctx = w.raw_context().await?;
    let mut floor_times = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        ctx.sql("SELECT case_type, outcome, count(*) AS n FROM cases GROUP BY 1, 2")
            .await?
            .collect()
            .await?;
        floor_times.push(t0.elapsed());
    }
    floor_times.sort();
    server.abort();
    Ok(json!({
        "lookup_urls": urls.len(),
        "first_lookup_ms_mean": warm,
        "lookups": levels,
        "lookups_at_2000_per_s": at_2000,
        "adhoc_sql": {
            "sql": sql,
            "median_seconds": api_times[1].as_secs_f64(),
            "floor_sql": "the same GROUP BY over the raw cases table in a bare session",
            "floor_median_seconds": floor_times[1].as_secs_f64(),
        },
    }))
}

fn machine() -> serde_json::Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or_default()
        .trim()
        .to_string();
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "memory_gib": mem_kib as f64 / 1024.0 / 1024.0,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "profile": if cfg!(debug_assertions) { "dev (engine crates at opt-level 1; see docs/building.md)" } else { "release (make bench)" },
        "plsw": env!("CARGO_PKG_VERSION"),
        "malloc": malloc_setting(),
    })
}

/// How the bench's processes allocate: the commands it measures (its children) restart with
/// glibc's mmap threshold fixed ([`crate::malloc`]) unless the environment sets one; the bench
/// process itself (the floors, and the API server with its load driver) runs as started.
fn malloc_setting() -> serde_json::Value {
    let var = |k: &str| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned());
    json!({
        "children": format!(
            "restart with glibc.malloc.mmap_threshold={} and glibc.malloc.trim_threshold={} \
             unless GLIBC_TUNABLES or MALLOC_MMAP_THRESHOLD_ below sets an mmap threshold (a \
             trim threshold in GLIBC_TUNABLES or MALLOC_TRIM_THRESHOLD_ is kept)",
            crate::malloc::MMAP_THRESHOLD,
            crate::malloc::TRIM_THRESHOLD
        ),
        "bench_process": "as started: glibc's defaults unless the variables below are set",
        "GLIBC_TUNABLES": var("GLIBC_TUNABLES"),
        "MALLOC_MMAP_THRESHOLD_": var("MALLOC_MMAP_THRESHOLD_"),
        "MALLOC_TRIM_THRESHOLD_": var("MALLOC_TRIM_THRESHOLD_"),
    })
}

/// A part of the bench, to run alone (`plsw bench --only ingest`) while working on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    Ingest,
    Transform,
    Api,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Ingest => "ingest",
            Part::Transform => "transform",
            Part::Api => "api",
        }
    }
}

/// The results file of a run: `<date>.json` for the whole bench, `<date>-<parts>.json` for a
/// run of some parts, which leaves the day's whole run in place.
fn results_name(date: &str, parts: &[Part]) -> String {
    use clap::ValueEnum as _;
    let all = Part::value_variants();
    if all.iter().all(|p| parts.contains(p)) {
        format!("{date}.json")
    } else {
        let names: Vec<&str> = all
            .iter()
            .filter(|p| parts.contains(p))
            .map(|p| p.name())
            .collect();
        format!("{date}-{}.json", names.join("-"))
    }
}

/// Runs the benches of `parts` (every part when empty) at every scale; writes the JSON and
/// returns the table.
pub async fn run(
    dir: &Path,
    scales: &[f64],
    api_seconds: u64,
    parts: &[Part],
) -> anyhow::Result<String> {
    let parts: Vec<Part> = match parts {
        [] => clap::ValueEnum::value_variants().to_vec(),
        some => some.to_vec(),
    };
    std::fs::create_dir_all(dir.join("results"))?;
    let work = dir.join("work");
    std::fs::create_dir_all(&work)?;
    let mut per_scale = Vec::new();
    for &scale in scales {
        let (data, wh, held_out) = prepare(dir, scale)?;
        let mut figures = json!({ "scale": scale });
        if parts.contains(&Part::Ingest) {
            eprintln!("bench: scale {scale}: ingest");
            let cases = data.join("cases");
            figures["ingest"] = bench_ingest(vec![
                IngestBench::new("UTF-8 CSV", files(&cases, "-mediation.csv")?, &work)?,
                IngestBench::new("GB18030 CSV", files(&cases, "-legal_aid.csv")?, &work)?,
                IngestBench::new("XLSX", files(&cases, "-notarization.xlsx")?, &work)?,
            ])?;
        }
        if !parts.contains(&Part::Transform) && !parts.contains(&Part::Api) {
            per_scale.push(figures);
            continue;
        }
        let copy = work.join("transform");
        let _ = std::fs::remove_dir_all(&copy);
        copy_dir(&wh, &copy)?;
        // First without current states (as on a warehouse never transformed: the run writes
        // them), then as in service, with the states the first run left.
        let _ = std::fs::remove_dir_all(copy.join(plsw_store::STATES_DIR));
        if parts.contains(&Part::Transform) {
            eprintln!("bench: scale {scale}: transform");
            let cold = child(&copy, &["transform", "--full"])?;
            let full = child(&copy, &["transform", "--full"])?;
            let day = child(
                &copy,
                &["ingest", "hotline", &held_out.display().to_string()],
            )?;
            let incremental = child(&copy, &["transform"])?;
            anyhow::ensure!(
                incremental.stdout.contains("incremental"),
                "the run after one more day was not incremental: {}",
                incremental.stdout
            );
            let floor = transform_floor(&copy).await?;
            figures["transform"] = json!({
                "full_seconds": full.wall.as_secs_f64(),
                "full_peak_rss_mib": full.max_rss_kib as f64 / 1024.0,
                "first_full_seconds": cold.wall.as_secs_f64(),
                "first_full_peak_rss_mib": cold.max_rss_kib as f64 / 1024.0,
                "one_day_ingest_seconds": day.wall.as_secs_f64(),
                "incremental_seconds": incremental.wall.as_secs_f64(),
                "floor_seconds": floor.as_secs_f64(),
                "full_ratio_to_floor": full.wall.as_secs_f64() / floor.as_secs_f64(),
            });
        } else {
            // The API serves indicators: computed first, untimed.
            child(&copy, &["transform", "--full"])?;
        }
        if parts.contains(&Part::Api) {
            eprintln!("bench: scale {scale}: API");
            figures["api"] = bench_api(&copy, api_seconds).await?;
        }
        let _ = std::fs::remove_dir_all(&copy);
        per_scale.push(figures);
    }
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let names: Vec<&str> = parts.iter().map(|p| p.name()).collect();
    let report = json!({
        "date": date,
        "machine": machine(),
        "parts": names,
        "scales": per_scale,
    });
    let path = dir.join("results").join(results_name(&date, &parts));
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    Ok(format!("{}\nwritten to {}", table(&report), path.display()))
}

/// The report as a table, with the targets of issue [G].
pub fn table(r: &serde_json::Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let m = &r["machine"];
    let _ = writeln!(
        out,
        "plsw bench {} on {} ({} cores, {:.0} GiB), {}",
        r["date"].as_str().unwrap_or_default(),
        m["cpu"].as_str().unwrap_or_default(),
        m["cores"].as_u64().unwrap_or(0),
        m["memory_gib"].as_f64().unwrap_or(0.0),
        m["profile"].as_str().unwrap_or_default()
    );
    let scales = r["scales"].as_array().cloned().unwrap_or_default();
    for s in &scales {
        let _ = writeln!(out, "\n== scale {} ==", s["scale"]);
        if !s["ingest"].is_null() {
            let _ = writeln!(
                out,
                "{:<12} {:>10} {:>8} {:>11} {:>8} {:>9} {:>9} {:>9} {:>8}   (medians; ×floor and peak, lowest-highest)",
                "ingest", "rows", "MB", "rows/s", "MB/s", "peak MiB", "code MiB", "floor s", "×floor"
            );
            for i in s["ingest"].as_array().into_iter().flatten() {
                let span = |key: &str, digits: usize| match i[key].as_array().map(Vec::as_slice) {
                    Some([lo, hi]) => format!(
                        "{:.digits$}-{:.digits$}",
                        lo.as_f64().unwrap_or(0.0),
                        hi.as_f64().unwrap_or(0.0)
                    ),
                    _ => "-".into(),
                };
                let _ = writeln!(
                    out,
                    "{:<12} {:>10} {:>8.1} {:>11.0} {:>8.2} {:>9.0} {:>9.0} {:>9.2} {:>8.2}   {}, {} MiB, cores {} ns apart",
                    i["format"].as_str().unwrap_or_default(),
                    i["rows"].as_u64().unwrap_or(0),
                    i["mb"].as_f64().unwrap_or(0.0),
                    i["rows_per_s"].as_f64().unwrap_or(0.0),
                    i["mb_per_s"].as_f64().unwrap_or(0.0),
                    i["peak_rss_mib"].as_f64().unwrap_or(0.0),
                    i["code_mib"].as_f64().unwrap_or(f64::NAN),
                    i["floor_seconds"].as_f64().unwrap_or(0.0),
                    i["ratio_to_floor"].as_f64().unwrap_or(0.0),
                    span("ratio_to_floor_range", 2),
                    span("peak_rss_mib_range", 0),
                    span("core_round_trip_ns_range", 0),
                );
            }
        }
        let t = &s["transform"];
        if !t.is_null() {
            let _ = writeln!(
                out,
                "transform: full {:.1} s (peak {:.0} MiB; floor {:.2} s, ×{:.1}); first, writing the states: {:.1} s (peak {:.0} MiB)\n           one more day: ingest {:.1} s, incremental transform {:.1} s",
                t["full_seconds"].as_f64().unwrap_or(0.0),
                t["full_peak_rss_mib"].as_f64().unwrap_or(0.0),
                t["floor_seconds"].as_f64().unwrap_or(0.0),
                t["full_ratio_to_floor"].as_f64().unwrap_or(0.0),
                t["first_full_seconds"].as_f64().unwrap_or(0.0),
                t["first_full_peak_rss_mib"].as_f64().unwrap_or(0.0),
                t["one_day_ingest_seconds"].as_f64().unwrap_or(0.0),
                t["incremental_seconds"].as_f64().unwrap_or(0.0),
            );
        }
        let a = &s["api"];
        if a.is_null() {
            continue;
        }
        let _ = writeln!(
            out,
            "{:<8} {:>9} {:>9} {:>10}   floor /health: {:>8} {:>8} {:>10}",
            "clients", "p50 ms", "p99 ms", "req/s", "p50 ms", "p99 ms", "req/s"
        );
        for l in a["lookups"].as_array().into_iter().flatten() {
            let f = |k: &str| l[k].as_f64().unwrap_or(0.0);
            let _ = writeln!(
                out,
                "{:<8} {:>9.2} {:>9.2} {:>10.0}                  {:>8.2} {:>8.2} {:>10.0}",
                l["clients"].as_u64().unwrap_or(0),
                f("p50_ms"),
                f("p99_ms"),
                f("requests_per_s"),
                f("floor_health_p50_ms"),
                f("floor_health_p99_ms"),
                f("floor_health_requests_per_s"),
            );
        }
        let p = &a["lookups_at_2000_per_s"];
        let _ = writeln!(
            out,
            "open loop at 2,000 lookups/s over 16 connections: p50 {:.2} ms, p99 {:.2} ms, achieved {:.0}/s",
            p["p50_ms"].as_f64().unwrap_or(0.0),
            p["p99_ms"].as_f64().unwrap_or(0.0),
            p["achieved_per_s"].as_f64().unwrap_or(0.0)
        );
        let q = &a["adhoc_sql"];
        let _ = writeln!(
            out,
            "ad-hoc SQL GROUP BY over cases_current: {:.2} s (floor, raw table in a bare session: {:.2} s)",
            q["median_seconds"].as_f64().unwrap_or(0.0),
            q["floor_median_seconds"].as_f64().unwrap_or(0.0)
        );
    }
    for line in targets(r) {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// The targets of issue [G], judged on the run's largest scale (peak RSS against scale 1, when
/// the run has both): one line each, saying met or not met.
fn targets(r: &serde_json::Value) -> Vec<String> {
    let scales = r["scales"].as_array().cloned().unwrap_or_default();
    let scale_of = |s: &serde_json::Value| s["scale"].as_f64().unwrap_or(0.0);
    let Some(top) = scales
        .iter()
        .max_by(|a, b| scale_of(a).total_cmp(&scale_of(b)))
    else {
        return Vec::new();
    };
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let t = &top["transform"];
    let p99 = f(&top["api"]["lookups_at_2000_per_s"]["p99_ms"]);
    let (full, incremental) = (f(&t["full_seconds"]), f(&t["incremental_seconds"]));
    let mut out = vec![format!(
        "\n== targets of issue [G], at scale {} ==",
        scale_of(top)
    )];
    // A run of some parts (`--only`) judges only what it measured.
    if !t.is_null() {
        out.push(format!(
            "full transform under 20 s: {full:.1} s, {}",
            verdict(full < 20.0)
        ));
        out.push(format!(
            "incremental after a day's file under 2 s: {incremental:.2} s, {}",
            verdict(incremental < 2.0)
        ));
    }
    if !top["api"].is_null() {
        out.push(format!(
            "lookups p99 under 5 ms at 2,000/s: {p99:.2} ms, {}",
            verdict(p99 < 5.0)
        ));
    }
    let ingest = top["ingest"].as_array().cloned().unwrap_or_default();
    if ingest.is_empty() {
        return out;
    }
    let each = |figure: &dyn Fn(&serde_json::Value) -> f64, limit: f64| {
        ingest
            .iter()
            .map(|i| {
                let x = figure(i);
                format!(
                    "{} {x:.2}×, {}",
                    i["format"].as_str().unwrap_or_default(),
                    verdict(x <= limit)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    out.push(format!(
        "ingest within 1.5× of its floor: {}",
        each(&|i| f(&i["ratio_to_floor"]), 1.5)
    ));
    // Not a target: the same by how far apart the cores were around each load.
    let by_cores: Vec<String> = ingest
        .iter()
        .filter(|i| !i["ratio_to_floor_cores_near"].is_null())
        .map(|i| {
            let part = |key: &str| {
                let p = &i[key];
                match p["loads"].as_u64().unwrap_or(0) {
                    0 => "no load".to_string(),
                    n => format!("{:.2}× ({n})", f(&p["median"])),
                }
            };
            format!(
                "{} {} near, {} apart",
                i["format"].as_str().unwrap_or_default(),
                part("ratio_to_floor_cores_near"),
                part("ratio_to_floor_cores_far")
            )
        })
        .collect();
    if !by_cores.is_empty() {
        out.push(format!(
            "  (for information, by the cores' distance around each load, near meaning a round trip under {NEAR_NS:.0} ns: {})",
            by_cores.join("; ")
        ));
    }
    let one = scales.iter().find(|s| scale_of(s) == 1.0);
    match one {
        Some(one) if scale_of(top) > 1.0 => {
            // A figure of scale 10 over the same figure of the same format at scale 1.
            let growth = |i: &serde_json::Value, key: &str| {
                let base = one["ingest"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|b| b["format"] == i["format"])
                    .map(|b| f(&b[key]))
                    .unwrap_or(f64::NAN);
                f(&i[key]) / base
            };
            out.push(format!(
                "ingest peak RSS within 1.2× of scale 1: {}",
                each(&|i| growth(i, "peak_rss_mib"), 1.2)
            ));
            // Not a target: the same without the binary's mapped code, which pads both peaks.
            let growth: Vec<String> = ingest
                .iter()
                .map(|i| {
                    let format = i["format"].as_str().unwrap_or_default();
                    format!("{format} {:.2}×", growth(i, "data_peak_mib"))
                })
                .collect();
            out.push(format!(
                "  (for information: the same less the binary's mapped code, the data's memory: {})",
                growth.join("; ")
            ));
        }
        _ => out.push("ingest peak RSS within 1.2× of scale 1: needs scales 1 and 10".into()),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_by_rank() {
        let ms = |v: u64| Duration::from_millis(v);
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 0.5), 51.0);
        assert_eq!(percentile(&sorted, 0.99), 99.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn a_childs_report_and_its_cpu_time() {
        let stat = "4242 (plsw (x) y) S 1 4242 4242 0 -1 4194304 100 0 0 0 73 12 0 0 20 0 9 0";
        assert_eq!(cpu_of_stat(stat), Some(Duration::from_millis(850)));
        assert_eq!(cpu_of_stat("4242 (plsw) S 1"), None);
        let report = "peak_kib=101376 code_kib=69632 cpu_ms=850";
        assert_eq!(reported(report, "peak_kib"), Some(101_376));
        assert_eq!(reported(report, "code_kib"), Some(69_632));
        assert_eq!(reported(report, "cpu_ms"), Some(850));
        assert_eq!(reported("peak_kib=5", "code_kib"), None);
        // This process's own stat parses.
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(cpu_of_stat(&own).is_some(), "{own}");
    }

    #[test]
    fn the_peak_is_read_from_the_status_of_a_process() {
        let status = "Name:\tplsw\nVmPeak:\t  900 kB\nVmHWM:\t  123456 kB\nVmRSS:\t 1000 kB\n\
                      RssAnon:\t 700 kB\nRssFile:\t 300 kB\n";
        assert_eq!(vm_hwm_kib(status), Some(123_456));
        assert_eq!(status_kib(status, "RssFile:"), Some(300));
        assert_eq!(vm_hwm_kib("Name:\tplsw\n"), None);
        // This process's own: at least the 8 MiB it has just touched, and some code.
        let touched = vec![1u8; 8 << 20];
        let (peak, code) = own_peak_rss_kib().expect("Linux");
        assert!(peak >= 8 * 1024, "{}", touched.len());
        assert!(code.is_some_and(|c| c > 0 && c < peak), "{code:?}");
    }

    #[test]
    fn loads_are_told_apart_by_how_far_apart_the_cores_were() {
        let mut bench = IngestBench {
            label: "GB18030 CSV",
            inputs: Vec::new(),
            wh: PathBuf::new(),
            args: Vec::new(),
            bytes: 0,
            rows: 0,
            runs: Vec::new(),
        };
        // Near only when both probes around a load are under NEAR_NS.
        for (ratio, probes) in [
            (1.4, [80.0, 90.0]),
            (1.3, [85.0, 82.0]),
            (1.7, [340.0, 80.0]),
            (1.6, [350.0, 360.0]),
            (1.45, [81.0, 199.0]),
        ] {
            bench
                .runs
                .push(json!({ "ratio_to_floor": ratio, "core_round_trip_ns": probes }));
        }
        let s = bench.summary();
        let near = &s["ratio_to_floor_cores_near"];
        assert_eq!(near["loads"], 3);
        assert_eq!(near["median"], 1.4);
        let far = &s["ratio_to_floor_cores_far"];
        assert_eq!(far["loads"], 2);
        assert!((far["median"].as_f64().unwrap() - 1.65).abs() < 1e-9);
        assert_eq!(s["core_round_trip_ns_range"], json!([80.0, 360.0]));
        assert_eq!(s["ratio_to_floor"], 1.45);
        let lines = targets(&json!({ "scales": [{ "scale": 10.0, "ingest": [s] }] }));
        assert_eq!(
            lines[2],
            "  (for information, by the cores' distance around each load, near meaning a round \
             trip under 200 ns: GB18030 CSV 1.40× (3) near, 1.65× (2) apart)"
        );
        // A result without probes has no range and no load either side.
        bench.runs = vec![json!({ "ratio_to_floor": 1.2 })];
        let s = bench.summary();
        assert!(s["core_round_trip_ns_range"].is_null());
        assert_eq!(s["ratio_to_floor_cores_near"]["loads"], 0);
    }

    #[test]
    fn the_probe_times_a_round_trip_between_two_threads() {
        let ns = core_round_trip_ns(100);
        assert!(ns.is_finite() && ns > 0.0, "{ns}");
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![7.0]), 7.0);
        assert!(median(Vec::new()).is_nan());
        assert_eq!(median(vec![f64::NAN, 3.0, 1.0]), 2.0);
        assert!(median(vec![f64::NAN]).is_nan());
    }

    #[test]
    fn the_targets_are_judged_on_the_largest_scale_and_rss_against_scale_1() {
        let scale = |scale: f64, ratio: f64, peak: f64, full: f64| {
            json!({
                "scale": scale,
                "ingest": [
                    { "format": "UTF-8 CSV", "ratio_to_floor": ratio, "peak_rss_mib": peak,
                      "data_peak_mib": peak - 70.0 },
                    { "format": "XLSX", "ratio_to_floor": 1.5, "peak_rss_mib": 100.0,
                      "data_peak_mib": 30.0 },
                ],
                "transform": { "full_seconds": full, "incremental_seconds": 1.99 },
                "api": { "lookups_at_2000_per_s": { "p99_ms": 5.0 } },
            })
        };
        let r = json!({ "scales": [scale(10.0, 1.2, 121.0, 19.9), scale(1.0, 9.0, 100.0, 99.0)] });
        let lines = targets(&r);
        assert_eq!(lines[0], "\n== targets of issue [G], at scale 10 ==");
        assert_eq!(lines[1], "full transform under 20 s: 19.9 s, met");
        assert_eq!(
            lines[2],
            "incremental after a day's file under 2 s: 1.99 s, met"
        );
        assert_eq!(
            lines[3],
            "lookups p99 under 5 ms at 2,000/s: 5.00 ms, NOT met"
        );
        assert_eq!(
            lines[4],
            "ingest within 1.5× of its floor: UTF-8 CSV 1.20×, met; XLSX 1.50×, met"
        );
        assert_eq!(
            lines[5],
            "ingest peak RSS within 1.2× of scale 1: UTF-8 CSV 1.21×, NOT met; XLSX 1.00×, met"
        );
        assert_eq!(
            lines[6],
            "  (for information: the same less the binary's mapped code, the data's memory: \
             UTF-8 CSV 1.70×; XLSX 1.00×)"
        );
        let alone = json!({ "scales": [scale(1.0, 2.0, 100.0, 30.0)] });
        let lines = targets(&alone);
        assert_eq!(lines[1], "full transform under 20 s: 30.0 s, NOT met");
        assert_eq!(
            lines[5],
            "ingest peak RSS within 1.2× of scale 1: needs scales 1 and 10"
        );
    }

    #[test]
    fn a_run_of_some_parts_judges_and_shows_only_those() {
        let date = "2026-11-28";
        let all = [Part::Api, Part::Ingest, Part::Transform];
        assert_eq!(results_name(date, &all), "2026-11-28.json");
        assert_eq!(
            results_name(date, &[Part::Ingest]),
            "2026-11-28-ingest.json"
        );
        assert_eq!(
            results_name(date, &[Part::Api, Part::Transform]),
            "2026-11-28-transform-api.json"
        );
        let r = json!({
            "date": date,
            "machine": { "cpu": "X", "cores": 2, "memory_gib": 24.0, "profile": "dev" },
            "scales": [{ "scale": 10.0, "ingest": [{ "format": "XLSX", "ratio_to_floor": 1.4,
                         "peak_rss_mib": 100.0, "data_peak_mib": 30.0 }] }],
        });
        let lines = targets(&r);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[1], "ingest within 1.5× of its floor: XLSX 1.40×, met");
        let t = table(&r);
        assert!(t.contains("XLSX"), "{t}");
        assert!(!t.contains("transform") && !t.contains("clients"), "{t}");
        let api = json!({ "scales": [{ "scale": 1.0,
                          "api": { "lookups_at_2000_per_s": { "p99_ms": 2.0 } } }] });
        let lines = targets(&api);
        assert_eq!(
            lines[1..],
            ["lookups p99 under 5 ms at 2,000/s: 2.00 ms, met".to_string()]
        );
    }

    #[test]
    fn csv_floor_counts_rows_with_every_column_as_text() {
        let text = "\u{feff}a,b,c\n1,x,\n2,\"y,z\",3\n";
        assert_eq!(arrow_csv_rows(text.as_bytes()).unwrap(), 2);
    }

    #[test]
    fn the_table_shows_every_figure_and_its_floor() {
        let r = json!({
            "date": "2026-11-27",
            "machine": { "cpu": "X", "cores": 2, "memory_gib": 24.0, "profile": "dev" },
            "scales": [{
                "scale": 1.0,
                "ingest": [{ "format": "UTF-8 CSV", "rows": 1000, "mb": 1.5, "rows_per_s": 500.0,
                             "mb_per_s": 0.75, "peak_rss_mib": 100.0, "code_mib": 70.0, "floor_seconds": 0.5,
                             "ratio_to_floor": 4.0 }],
                "transform": { "full_seconds": 41.0, "full_peak_rss_mib": 1000.0, "floor_seconds": 0.75,
                               "full_ratio_to_floor": 54.7, "one_day_ingest_seconds": 0.7,
                               "first_full_seconds": 52.5, "first_full_peak_rss_mib": 1100.0,
                               "incremental_seconds": 43.4 },
                "api": { "lookups": [{ "clients": 16, "p50_ms": 3.5, "p99_ms": 6.0, "requests_per_s": 4390.0,
                                       "floor_health_p50_ms": 2.2, "floor_health_p99_ms": 3.6,
                                       "floor_health_requests_per_s": 6982.0 }],
                         "lookups_at_2000_per_s": { "p50_ms": 1.59, "p99_ms": 3.18, "achieved_per_s": 2000.0 },
                         "adhoc_sql": { "median_seconds": 4.58, "floor_median_seconds": 0.17 } }
            }]
        });
        let t = table(&r);
        assert!(t.contains("X (2 cores, 24 GiB)"), "{t}");
        assert!(t.contains("UTF-8 CSV          1000      1.5         500     0.75       100        70      0.50     4.00"), "{t}");
        assert!(
            t.contains("full 41.0 s (peak 1000 MiB; floor 0.75 s, ×54.7)"),
            "{t}"
        );
        assert!(t.contains("incremental transform 43.4 s"), "{t}");
        assert!(
            t.contains("first, writing the states: 52.5 s (peak 1100 MiB)"),
            "{t}"
        );
        assert!(
            t.contains("p50 1.59 ms, p99 3.18 ms, achieved 2000/s"),
            "{t}"
        );
        assert!(t.contains("16            3.50      6.00       4390"), "{t}");
    }
}
