//! `plsw generate`: a synthetic province-year in the exact formats of the feeds, on the real
//! divisions of Henan, deterministic for a seed.
//!
//! Sizes at scale 1 follow `domain.md` (≈110k calls, ≈1.2M cases, ≈300k work orders with 2–4
//! versions, platforms on every real township and village, ≈15k village legal advisers …).
//! Populations are **synthetic** (≈99 M in all, spread over the counties by kind). Counties
//! differ visibly: each has a hidden "quality" that drives its build rates, staffing and
//! outcomes, and a few cities answer the hotline well below the 90% target. Every file carries a
//! few bad rows of each kind, so quarantine has something to show.

mod cases;
mod hotline;
mod registries;
mod rng;
mod work_orders;
mod world;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

pub use rng::Rng;
pub use world::World;

/// Options of `plsw generate`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Output directory (created; existing files of the same names are replaced)
    #[arg(long)]
    pub out: PathBuf,
    /// The year to generate
    #[arg(long, default_value_t = 2025)]
    pub year: i32,
    /// Volume of events and people relative to one province-year (0.01 for a quick test)
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Random seed; the same seed gives the same bytes
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Only these cities (comma-separated codes, e.g. 410100,419000); their divisions are written
    /// to OUT/divisions for `plsw seeds load`
    #[arg(long, value_delimiter = ',')]
    pub cities: Vec<String>,
}

/// What a generator wrote, for the summary.
#[derive(Debug, Default)]
pub struct Written {
    pub feed: &'static str,
    pub files: usize,
    pub rows: usize,
    pub bad_rows: usize,
}

/// Writes every feed under `args.out`; returns a human summary.
pub fn run(args: &Args) -> anyhow::Result<String> {
    anyhow::ensure!(args.scale > 0.0, "--scale must be positive");
    let world = World::new(args.seed, args.year, &args.cities)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut written = Vec::new();
    if !args.cities.is_empty() {
        world.write_divisions(&args.out.join("divisions"))?;
    }
    written.push(hotline::write(&world, args, &dir(&args.out, "hotline")?)?);
    written.push(cases::write(&world, args, &dir(&args.out, "cases")?)?);
    written.extend(registries::write(&world, args, &args.out)?);
    written.push(work_orders::write(
        &world,
        args,
        &dir(&args.out, "work_orders")?,
    )?);
    std::fs::write(args.out.join("README.txt"), readme(args, &written))?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "generated {} (year {}, scale {}, seed {}):",
        args.out.display(),
        args.year,
        args.scale,
        args.seed
    );
    for w in &written {
        let _ = writeln!(
            s,
            "  {:<12} {:>4} file(s) {:>9} rows, {:>4} of them bad on purpose",
            w.feed, w.files, w.rows, w.bad_rows
        );
    }
    Ok(s.trim_end().to_string())
}

fn dir(out: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let d = out.join(name);
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}

fn readme(args: &Args, written: &[Written]) -> String {
    let mut s = format!(
        "Synthetic demo data made by `plsw generate` (year {}, scale {}, seed {}).\n\
         NOT REAL DATA: the places are the real divisions of Henan, but every call, case, order,\n\
         platform, person, amount and POPULATION figure is invented. Populations are synthetic.\n\
         Each file holds a few deliberately bad rows so that quarantine can be seen at work.\n\n",
        args.year, args.scale, args.seed
    );
    for w in written {
        let _ = writeln!(
            s,
            "{}: {} file(s), {} rows ({} bad)",
            w.feed, w.files, w.rows, w.bad_rows
        );
    }
    s
}

/// Writes CSV text in UTF-8, UTF-8 with BOM, or GB18030.
pub(crate) fn write_text(path: &Path, text: &str, enc: TextEncoding) -> anyhow::Result<()> {
    let bytes: Vec<u8> = match enc {
        TextEncoding::Utf8 => text.as_bytes().to_vec(),
        TextEncoding::Utf8Bom => {
            let mut b = "\u{feff}".as_bytes().to_vec();
            b.extend_from_slice(text.as_bytes());
            b
        }
        TextEncoding::Gb18030 => {
            let (b, _, unmappable) = encoding_rs::GB18030.encode(text);
            anyhow::ensure!(!unmappable, "text not representable in GB18030");
            b.into_owned()
        }
    };
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextEncoding {
    Utf8,
    Utf8Bom,
    Gb18030,
}

/// Builds a CSV document with the given header and rows (RFC 4180 quoting).
pub(crate) struct CsvDoc {
    w: csv::Writer<Vec<u8>>,
    pub rows: usize,
}

impl CsvDoc {
    pub(crate) fn new(header: &[&str]) -> Self {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        w.write_record(header).expect("in-memory write");
        CsvDoc { w, rows: 0 }
    }

    pub(crate) fn row<I, S>(&mut self, fields: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        self.w.write_record(fields).expect("in-memory write");
        self.rows += 1;
    }

    pub(crate) fn finish(self) -> String {
        String::from_utf8(self.w.into_inner().expect("in-memory")).expect("utf-8")
    }
}

/// Header names of a table's columns: English, or the first Chinese alias.
pub(crate) fn headers(table: &plsw_schemas::Table, chinese: bool) -> Vec<&'static str> {
    table
        .columns
        .iter()
        .map(|c| {
            if chinese {
                c.zh.first().copied().unwrap_or(c.name)
            } else {
                c.name
            }
        })
        .collect()
}
