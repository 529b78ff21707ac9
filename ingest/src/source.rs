//! Input files: resolving PATH arguments, fingerprinting content, detecting the encoding, and
//! reading records (CSV in UTF-8 or GB18030, XLSX) as rows of text in the feed's column order.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// One input file: on the local file system, or an object of an object store (`file://…`, or
/// `s3://…` in a build with the `s3` feature), fetched to a temporary file when it is loaded.
pub enum Input {
    Local(PathBuf),
    Object {
        store: std::sync::Arc<dyn object_store::ObjectStore>,
        location: object_store::path::Path,
        url: String,
    },
}

impl Input {
    /// The name the input is known by in `loads`, `quarantine` and the lineage columns.
    pub fn name(&self) -> String {
        match self {
            Input::Local(p) => p.display().to_string(),
            Input::Object { url, .. } => url.clone(),
        }
    }

    /// A local path to read the input from (an object is streamed to a temporary file, removed
    /// when the returned guard drops).
    pub async fn fetch(&self) -> Result<(PathBuf, Option<tempfile::TempPath>)> {
        use futures::StreamExt;
        use object_store::ObjectStoreExt;
        use std::io::Write;
        match self {
            Input::Local(p) => Ok((p.clone(), None)),
            Input::Object {
                store,
                location,
                url,
            } => {
                let err = |message: String| Error::Path {
                    path: url.clone(),
                    message,
                };
                let mut tmp = tempfile::NamedTempFile::new().map_err(|e| err(e.to_string()))?;
                let mut stream = store
                    .get(location)
                    .await
                    .map_err(|e| err(e.to_string()))?
                    .into_stream();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| err(e.to_string()))?;
                    tmp.write_all(&chunk).map_err(|e| err(e.to_string()))?;
                }
                let path = tmp.into_temp_path();
                Ok((path.to_path_buf(), Some(path)))
            }
        }
    }
}

/// Resolves PATH arguments to inputs: local files, directories and globs (see [`resolve`]), and
/// object-store URLs: an object, a prefix (every object under it), or a glob in the last part.
pub async fn resolve_inputs(paths: &[String]) -> Result<Vec<Input>> {
    let mut out = Vec::new();
    for p in paths {
        if !p.contains("://") {
            out.extend(
                resolve(std::slice::from_ref(p))?
                    .into_iter()
                    .map(Input::Local),
            );
            continue;
        }
        out.extend(resolve_url(p).await?);
    }
    Ok(out)
}

async fn resolve_url(text: &str) -> Result<Vec<Input>> {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let err = |message: String| Error::Path {
        path: text.to_string(),
        message,
    };
    let (base, pattern) = match text.rsplit_once('/') {
        Some((dir, last)) if last.contains(['*', '?', '[']) => (format!("{dir}/"), Some(last)),
        _ => (text.to_string(), None),
    };
    let url = url::Url::parse(&base).map_err(|e| err(e.to_string()))?;
    // S3 credentials, region and endpoint from the usual AWS_* variables (other keys are ignored).
    let env = std::env::vars().filter(|(k, _)| k.starts_with("AWS_"));
    let (store, prefix) =
        object_store::parse_url_opts(&url, env).map_err(|e| err(e.to_string()))?;
    let store: std::sync::Arc<dyn object_store::ObjectStore> = store.into();
    let as_url = |loc: &object_store::path::Path| {
        let mut u = url.clone();
        u.set_path(&format!("/{loc}"));
        u.to_string()
    };
    if pattern.is_none() {
        if let Ok(meta) = store.head(&prefix).await {
            return Ok(vec![Input::Object {
                url: as_url(&meta.location),
                location: meta.location,
                store,
            }]);
        }
    }
    let glob = pattern
        .map(|p| glob::Pattern::new(p).map_err(|e| err(e.to_string())))
        .transpose()?;
    let mut metas: Vec<object_store::ObjectMeta> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| err(e.to_string()))?;
    metas.retain(|m| {
        let name = m.location.filename().unwrap_or_default();
        !name.starts_with('.') && glob.as_ref().is_none_or(|g| g.matches(name))
    });
    metas.sort_by(|a, b| a.location.cmp(&b.location));
    if metas.is_empty() {
        return Err(err("matches no object".into()));
    }
    Ok(metas
        .into_iter()
        .map(|m| Input::Object {
            url: as_url(&m.location),
            location: m.location,
            store: store.clone(),
        })
        .collect())
}

/// Resolves each PATH (a file, a directory, or a glob) to files, in sorted path order per
/// argument; arguments keep their order. Hidden files are skipped in directories.
pub fn resolve(paths: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let path = Path::new(p);
        let mut found: Vec<PathBuf> = if path.is_dir() {
            walk(path)?
        } else if path.exists() {
            vec![path.to_path_buf()]
        } else if p.contains(['*', '?', '[']) {
            let options = glob::MatchOptions {
                require_literal_leading_dot: true,
                ..Default::default()
            };
            glob::glob_with(p, options)
                .map_err(|e| Error::Path {
                    path: p.clone(),
                    message: e.to_string(),
                })?
                .filter_map(|r| r.ok())
                .filter(|p| p.is_file())
                .collect()
        } else {
            return Err(Error::Path {
                path: p.clone(),
                message: "no such file or directory".into(),
            });
        };
        if found.is_empty() {
            return Err(Error::Path {
                path: p.clone(),
                message: "matches no file".into(),
            });
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

/// How a file's bytes are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf8Bom,
    Gb18030,
    Xlsx,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf8Bom => "utf-8-bom",
            Encoding::Gb18030 => "gb18030",
            Encoding::Xlsx => "xlsx",
        }
    }

    /// Parses `--encoding`.
    pub fn parse(text: &str) -> Option<Encoding> {
        match text.to_ascii_lowercase().replace('_', "-").as_str() {
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            "gb18030" | "gbk" | "gb2312" => Some(Encoding::Gb18030),
            _ => None,
        }
    }
}

/// What one pass over a file tells: its fingerprint and encoding.
#[derive(Debug, Clone)]
pub struct Fingerprint {
    pub sha256: String,
    pub bytes: u64,
    pub encoding: Encoding,
    /// The file's modification time when it was hashed, to tell a file that changed before its
    /// load finished (see [`unchanged`]).
    pub modified: Option<std::time::SystemTime>,
}

/// Whether a file is still as it was when it was fingerprinted (same size, same modification
/// time). A file still being written when it was loaded fails, rather than be committed under
/// the identity of other content: its load is then retried whole once the file is complete.
pub fn unchanged(path: &Path, fp: &Fingerprint) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() != fp.bytes || meta.modified().ok() != fp.modified {
        return Err(Error::Read {
            path: path.to_path_buf(),
            message: format!(
                "the file changed while it was being loaded ({} bytes when hashed, {} now); \
                 load it again once it is complete",
                fp.bytes,
                meta.len()
            ),
        });
    }
    Ok(())
}

/// The fingerprint's reads: a buffer that stays in a core's cache (1 MiB, a core's whole L2 here,
/// was written by the kernel and read back by the hash from further out), and below glibc's
/// mmap threshold (`src/malloc.rs`), so that it is not mapped afresh for every file.
const FINGERPRINT_READ: usize = 256 * 1024;

/// Reads the file once: SHA-256 of its bytes, and whether it is XLSX, UTF-8 (with or without
/// BOM) or else GB18030. `forced` skips detection (GB18030 validity is checked while reading).
pub fn fingerprint(path: &Path, forced: Option<Encoding>) -> Result<Fingerprint> {
    // Read in chunks straight from the file (a buffered reader would only copy them).
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let modified = file.metadata().ok().and_then(|m| m.modified().ok());
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; FINGERPRINT_READ];
    let mut utf8 = Utf8Check::default();
    let mut ascii = true;
    let mut head: Vec<u8> = Vec::new();
    let mut bytes = 0u64;
    loop {
        let n = read_some(&mut file, &mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buf[..n]);
        ascii = ascii && buf[..n].is_ascii();
        if head.len() < 4 {
            head.extend_from_slice(&buf[..n.min(4)]);
        }
        utf8.update(&buf[..n]);
    }
    let utf8 = utf8.finish();
    let encoding = if head.starts_with(b"PK\x03\x04") {
        Encoding::Xlsx
    } else if let Some(forced) = forced {
        match forced {
            Encoding::Utf8 if !utf8 => {
                return Err(Error::Encoding {
                    path: path.to_path_buf(),
                    message: "--encoding utf-8 was given but the file is not valid UTF-8".into(),
                })
            }
            Encoding::Utf8 if head.starts_with(b"\xEF\xBB\xBF") => Encoding::Utf8Bom,
            // UTF-8 Chinese is mostly legal GB18030 too: decoding it so would garble it silently.
            Encoding::Gb18030 if utf8 && !ascii => {
                return Err(Error::Encoding {
                    path: path.to_path_buf(),
                    message:
                        "--encoding gb18030 was given but the file is UTF-8 with non-ASCII text; \
                              reading it as GB18030 would corrupt it"
                            .into(),
                })
            }
            other => other,
        }
    } else if head.starts_with(b"\xEF\xBB\xBF") && utf8 {
        Encoding::Utf8Bom
    } else if utf8 {
        Encoding::Utf8
    } else {
        Encoding::Gb18030
    };
    let fp = Fingerprint {
        sha256: hex::encode(hasher.finalize()),
        bytes,
        encoding,
        modified,
    };
    // Appended to, or rewritten, while it was hashed.
    unchanged(path, &fp)?;
    Ok(fp)
}

/// Whether a stream of chunks is valid UTF-8, where a sequence may straddle two chunks. Only
/// the straddling bytes are copied, never a chunk.
#[derive(Debug)]
struct Utf8Check {
    valid: bool,
    /// The start of a sequence that the next chunk completes (at most 3 bytes).
    carry: Vec<u8>,
}

impl Default for Utf8Check {
    fn default() -> Self {
        Utf8Check {
            valid: true,
            carry: Vec::new(),
        }
    }
}

impl Utf8Check {
    fn update(&mut self, mut chunk: &[u8]) {
        if !self.valid {
            return;
        }
        if let Some(&lead) = self.carry.first() {
            let len = match lead {
                0xC2..=0xDF => 2,
                0xE0..=0xEF => 3,
                _ => 4,
            };
            let take = (len - self.carry.len()).min(chunk.len());
            self.carry.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.carry.len() < len {
                return;
            }
            if simdutf8::basic::from_utf8(&self.carry).is_err() {
                self.valid = false;
                return;
            }
            self.carry.clear();
        }
        // simdutf8 checks a chunk of Chinese text several times faster than std, which was
        // half of the fingerprint's time on a UTF-8 file (`perf`, session 9).
        match simdutf8::compat::from_utf8(chunk) {
            Ok(_) => {}
            // An incomplete sequence at the end: kept for the next chunk.
            Err(e) if e.error_len().is_none() => {
                self.carry.extend_from_slice(&chunk[e.valid_up_to()..]);
            }
            Err(_) => self.valid = false,
        }
    }

    fn finish(self) -> bool {
        self.valid && self.carry.is_empty()
    }
}

/// One `read` of `input` into `buf`, tried again when a signal interrupted it.
pub(crate) fn read_some(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match input.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            done => return done,
        }
    }
}

/// Decodes GB18030 to UTF-8 as a stream of text blocks, failing (never replacing) on a malformed
/// sequence, so that a file in neither encoding is rejected instead of loaded with corrupted
/// text. The decoder writes into a `String`: text that is UTF-8 by construction, which nothing
/// need check again.
pub struct Gb18030Text<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    eof: bool,
    /// The decoder was told the input ended (it must not be called again).
    done: bool,
    /// Bytes of the file decoded so far, for the error's position.
    offset: u64,
}

impl<R: Read> Gb18030Text<R> {
    pub fn new(inner: R) -> Self {
        Self::with_input_size(inner, 256 * 1024)
    }

    /// With reads of `size` bytes from `inner` (small ones in tests, so that characters
    /// straddle them).
    pub fn with_input_size(inner: R, size: usize) -> Self {
        Gb18030Text {
            inner,
            decoder: encoding_rs::GB18030.new_decoder_without_bom_handling(),
            input: vec![0; size.max(1)],
            in_pos: 0,
            in_len: 0,
            eof: false,
            done: false,
            offset: 0,
        }
    }

    /// Replaces `text` with the next block of decoded text, as much as its capacity holds
    /// (whole characters; at least one unless the input ended). Empty at the end.
    pub fn fill(&mut self, text: &mut String) -> std::io::Result<()> {
        text.clear();
        // Room for one character of any length.
        text.reserve(4);
        while !self.done {
            if self.in_pos == self.in_len && !self.eof {
                self.in_pos = 0;
                self.in_len = read_some(&mut self.inner, &mut self.input)?;
                self.eof = self.in_len == 0;
            }
            let (result, read) = self.decoder.decode_to_string_without_replacement(
                &self.input[self.in_pos..self.in_len],
                text,
                self.eof,
            );
            self.in_pos += read;
            self.offset += read as u64;
            match result {
                encoding_rs::DecoderResult::Malformed(_, _) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("not valid UTF-8 nor GB18030 near byte {}", self.offset),
                    ))
                }
                encoding_rs::DecoderResult::OutputFull => return Ok(()),
                encoding_rs::DecoderResult::InputEmpty => self.done = self.eof,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_changes_after_its_fingerprint_is_told() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2025-01-mediation.csv");
        std::fs::write(&path, "case_id,case_type\nA1,mediation\n").unwrap();
        let fp = fingerprint(&path, None).unwrap();
        assert!(unchanged(&path, &fp).is_ok());
        // Still being written: a record more.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, b"A2,mediation\n").unwrap();
        drop(f);
        let err = unchanged(&path, &fp).unwrap_err().to_string();
        assert!(err.contains("changed while it was being loaded"), "{err}");
    }

    #[test]
    fn utf8_is_checked_across_chunk_boundaries() {
        let text = "豫0621,法律援助,𠀀é\n".as_bytes();
        let check = |bytes: &[u8], cut: &[usize]| {
            let mut c = Utf8Check::default();
            let mut from = 0;
            for &at in cut {
                c.update(&bytes[from..at]);
                from = at;
            }
            c.update(&bytes[from..]);
            c.finish()
        };
        for a in 0..=text.len() {
            for b in a..=text.len() {
                assert!(check(text, &[a, b]), "valid text cut at {a} and {b}");
            }
        }
        let gbk = encoding_rs::GB18030
            .encode("豫0621,法律援助")
            .0
            .into_owned();
        let truncated = &text[..2];
        for a in 0..=gbk.len() {
            assert!(!check(&gbk, &[a]), "GB18030 bytes cut at {a}");
        }
        assert!(!check(truncated, &[1]), "a sequence cut short at the end");
        assert!(
            !check(&[0xE8, 0x41, 0x41], &[1]),
            "a lead byte without its continuation"
        );
    }

    /// The whole text of a GB18030 input read in `input`-byte reads into blocks of `block`
    /// bytes' capacity (up to the first empty block, which must be the end).
    fn decode_all(bytes: &[u8], input: usize, block: usize) -> std::io::Result<String> {
        let mut d = Gb18030Text::with_input_size(bytes, input);
        let (mut all, mut text) = (String::new(), String::with_capacity(block));
        loop {
            d.fill(&mut text)?;
            if text.is_empty() {
                // The end stays the end.
                d.fill(&mut text)?;
                assert!(text.is_empty());
                return Ok(all);
            }
            all.push_str(&text);
        }
    }

    #[test]
    fn gb18030_round_trips_chinese() {
        let unit = "通话编号,来电区县代码\nA1,中牟县,𠀀\n";
        let text = unit.repeat(5000);
        let (bytes, _, _) = encoding_rs::GB18030.encode(&text);
        assert_eq!(decode_all(&bytes, 256 * 1024, 1 << 20).unwrap(), text);
        // Characters of 1, 2 and 4 bytes cut by the reads, and blocks that hold a few only.
        let text = unit.repeat(40);
        let (bytes, _, _) = encoding_rs::GB18030.encode(&text);
        for (input, block) in [(1, 4), (3, 5), (7, 13), (4096, 64)] {
            assert_eq!(
                decode_all(&bytes, input, block).unwrap(),
                text,
                "{input} {block}"
            );
        }
    }

    #[test]
    fn malformed_gb18030_is_an_error() {
        let err = decode_all(b"abc,\x81\x20def\n", 256, 64).unwrap_err();
        // The fifth byte, 0x81, starts no character with the space after it.
        assert!(err.to_string().contains("near byte 5"), "{err}");
        // A sequence cut short by the end of the file.
        assert!(decode_all(b"abc,\x81", 256, 64).is_err());
    }

    #[test]
    fn resolves_files_directories_and_globs_in_sorted_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub")).unwrap();
        for f in ["b.csv", "a.csv", "sub/c.csv", ".hidden.csv"] {
            std::fs::write(d.join(f), "x").unwrap();
        }
        let names = |v: Vec<PathBuf>| -> Vec<String> {
            v.iter()
                .map(|p| p.strip_prefix(d).unwrap().display().to_string())
                .collect()
        };
        let all = resolve(&[d.display().to_string()]).unwrap();
        assert_eq!(names(all), ["a.csv", "b.csv", "sub/c.csv"]);
        let glob = resolve(&[format!("{}/*.csv", d.display())]).unwrap();
        assert_eq!(names(glob), ["a.csv", "b.csv"]);
        let files = resolve(&[
            d.join("b.csv").display().to_string(),
            d.join("a.csv").display().to_string(),
        ])
        .unwrap();
        assert_eq!(
            names(files),
            ["b.csv", "a.csv"],
            "arguments keep their order"
        );
        assert!(resolve(&[d.join("nope.csv").display().to_string()]).is_err());
        assert!(resolve(&[format!("{}/*.xlsx", d.display())]).is_err());
    }

    #[test]
    fn detects_encodings() {
        let dir = tempfile::tempdir().unwrap();
        let utf = dir.path().join("a.csv");
        std::fs::write(&utf, "x,中牟县\n").unwrap();
        assert_eq!(fingerprint(&utf, None).unwrap().encoding, Encoding::Utf8);
        let bom = dir.path().join("b.csv");
        std::fs::write(&bom, "\u{feff}x,中牟县\n").unwrap();
        assert_eq!(fingerprint(&bom, None).unwrap().encoding, Encoding::Utf8Bom);
        let gb = dir.path().join("c.csv");
        std::fs::write(&gb, encoding_rs::GB18030.encode("x,中牟县\n").0).unwrap();
        let fp = fingerprint(&gb, None).unwrap();
        assert_eq!(fp.encoding, Encoding::Gb18030);
        assert!(fingerprint(&gb, Some(Encoding::Utf8)).is_err());
        assert!(
            fingerprint(&utf, Some(Encoding::Gb18030)).is_err(),
            "would garble 中牟县"
        );
        let ascii = dir.path().join("d.csv");
        std::fs::write(&ascii, "x,1\n").unwrap();
        assert_eq!(
            fingerprint(&ascii, Some(Encoding::Gb18030))
                .unwrap()
                .encoding,
            Encoding::Gb18030
        );
        assert_eq!(fp.sha256.len(), 64);
    }
}
