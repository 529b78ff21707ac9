//! Reading a file's records as text, with its header mapped onto a table's columns.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Mutex;
use std::time::Duration;

use plsw_schemas::tables::Table;

use crate::error::{Error, Result};
use crate::source::{read_some, Encoding, Gb18030Text};
use crate::xlsx::{self, Workbook};

/// Records read ahead, handed from the reader's thread to the checks in one message: their text
/// back to back in one buffer, and their fields' ends back to back in another, both reused from
/// chunk to chunk. (Until session 19 each record had a buffer of text and one of ends of its
/// own: a year of GB18030 cases took 2% more CPU, most of it the reader's.)
///
/// A record's fields lie in its text one byte apart: a line without quotes is copied as it is
/// and split at its commas; fields pushed one by one (a quoted record, a workbook's cells) get a
/// comma put between them. Each end is counted from the record's start.
#[derive(Debug, Default)]
struct Chunk {
    text: String,
    ends: Vec<u32>,
    records: Vec<Span>,
}

/// Where a record of a chunk ends in its text and its ends (it starts where the one before it
/// ends), and its position in the file (1-based CSV data record, or XLSX sheet row).
#[derive(Debug, Clone, Copy)]
struct Span {
    position: i64,
    text_end: usize,
    ends_end: usize,
}

/// The longest record, in bytes: a field's end is counted from its record's start in 32 bits
/// (4 GiB; 1 MiB in tests, which try a longer one). A longer record fails its file.
const MAX_RECORD: usize = if cfg!(test) {
    1 << 20
} else {
    u32::MAX as usize - 1
};

impl Chunk {
    /// Records ended.
    fn len(&self) -> usize {
        self.records.len()
    }

    fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
        self.records.clear();
    }

    /// Where the open record (the one being filled, after the last one ended) starts in the
    /// text and in the ends.
    fn open_start(&self) -> (usize, usize) {
        self.start_of(self.records.len())
    }

    /// Where record `i` starts in the text and in the ends: where the one before it ends.
    fn start_of(&self, i: usize) -> (usize, usize) {
        match i {
            0 => (0, 0),
            _ => (self.records[i - 1].text_end, self.records[i - 1].ends_end),
        }
    }

    /// Whether the chunk is to be sent: [`CHUNK_RECORDS`] records, or [`CHUNK_TEXT`] of text.
    fn is_full(&self) -> bool {
        self.len() >= CHUNK_RECORDS || self.text.len() >= CHUNK_TEXT
    }

    /// Adds a field to the open record. Its end is counted from the record's start, saturated
    /// at `u32::MAX`: such a record is longer than [`MAX_RECORD`] and refused when it ends.
    fn push_field(&mut self, field: &str) {
        let (text, ends) = self.open_start();
        if self.ends.len() > ends {
            self.text.push(',');
        }
        self.text.push_str(field);
        self.ends
            .push(u32::try_from(self.text.len() - text).unwrap_or(u32::MAX));
    }

    /// The fields of `line`, a record without quotes, as the open record (empty until now):
    /// split at every comma.
    fn push_line(&mut self, line: &str) {
        debug_assert_eq!(self.open_start(), (self.text.len(), self.ends.len()));
        if line.len() > MAX_RECORD {
            // One end past the limit, which `end_record` refuses.
            self.text.push_str(line);
            self.ends.push(u32::MAX);
            return;
        }
        self.text.push_str(line);
        commas(line.as_bytes(), &mut self.ends);
        self.ends.push(line.len() as u32);
    }

    /// Ends the open record, at `position` in its file; a record of more than [`MAX_RECORD`]
    /// bytes is an error (and is taken back).
    fn end_record(&mut self, position: i64) -> std::result::Result<(), String> {
        let (text, _) = self.open_start();
        let len = self.text.len() - text;
        if len > MAX_RECORD {
            self.discard_open();
            return Err(format!(
                "record {position} is {len} bytes long, more than a record may be ({MAX_RECORD})"
            ));
        }
        self.records.push(Span {
            position,
            text_end: self.text.len(),
            ends_end: self.ends.len(),
        });
        Ok(())
    }

    /// Takes back what the open record holds.
    fn discard_open(&mut self) {
        let (text, ends) = self.open_start();
        self.text.truncate(text);
        self.ends.truncate(ends);
    }

    /// The open record's fields.
    fn open_fields(&self) -> Fields<'_> {
        let (text, ends) = self.open_start();
        Fields {
            text: &self.text[text..],
            ends: &self.ends[ends..],
        }
    }

    /// Record `i`: its position and its fields.
    fn record(&self, i: usize) -> (i64, Fields<'_>) {
        let (text, ends) = self.start_of(i);
        let span = self.records[i];
        let fields = Fields {
            text: &self.text[text..span.text_end],
            ends: &self.ends[ends..span.ends_end],
        };
        (span.position, fields)
    }
}

/// A record's fields: its text, each field one byte (a comma) after the one before, and where
/// each ends. The text was checked as UTF-8 once for the whole record, and that each field ends
/// on a character boundary. (csv's `StringRecord` checks each field on its own, which cost more
/// than splitting the record.)
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a> {
    text: &'a str,
    ends: &'a [u32],
}

impl<'a> Fields<'a> {
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn get(&self, i: usize) -> Option<&'a str> {
        let end = *self.ends.get(i)? as usize;
        let start = match i {
            0 => 0,
            _ => self.ends[i - 1] as usize + 1,
        };
        // Every end is a character boundary: the splitter checks them, a comma is a byte of
        // its own, and pushed fields are text of their own.
        self.text.get(start..end)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        (0..self.len()).map(|i| self.get(i).unwrap_or(""))
    }
}

/// Appends the position of every comma of `line` (of no more than [`MAX_RECORD`] bytes) to
/// `ends`, eight bytes at a time: fields are a few bytes long, too short for a vector search to
/// pay off, and this took the splitter 14% less time than a byte loop.
fn commas(line: &[u8], ends: &mut Vec<u32>) {
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const COMMAS: u64 = u64::from_ne_bytes([b','; 8]);
    let mut words = line.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let x = u64::from_le_bytes(word.try_into().expect("8 bytes")) ^ COMMAS;
        // The top bit of each byte that is zero (a comma), and of no other byte: adding 0x7f
        // to the low seven bits carries into the top bit unless they are all zero, and no
        // carry crosses a byte.
        let mut zero = !(((x & LOW).wrapping_add(LOW)) | x | LOW);
        while zero != 0 {
            ends.push(at + zero.trailing_zeros() / 8);
            zero &= zero - 1;
        }
        at += 8;
    }
    for (i, b) in words.remainder().iter().enumerate() {
        if *b == b',' {
            ends.push(at + i as u32);
        }
    }
}

/// Splits CSV text into records with csv-core (RFC 4180 quoting, any line ending, blank lines
/// skipped), reading in 1 MiB blocks after a first small one.
struct CsvSplitter {
    core: csv_core::Reader,
    source: Source,
    /// A record's field text and field ends as csv-core writes them (kept at full length: what
    /// it wrote is copied out).
    out: Vec<u8>,
    ends: Vec<usize>,
    /// Records split so far, the header first.
    records: i64,
    /// The part of the block not split yet.
    pos: usize,
    len: usize,
    eof: bool,
}

/// Where a splitter's blocks come from, and the block read. The first block is small
/// ([`FIRST_BLOCK`]): the header is read from it on the calling thread, which waits for it,
/// before the records are read, on a reader thread or on the spot (for GB18030 a whole first
/// block was a megabyte of text to decode there). The blocks after it are `block` bytes.
struct Source {
    input: Input,
    block: usize,
    /// The first block is still to be read.
    first: bool,
}

enum Input {
    /// Bytes as read: each record's text is checked as UTF-8 when it is split.
    Bytes {
        input: Box<dyn Read + Send>,
        buf: Vec<u8>,
    },
    /// Text decoded from GB18030 into the block: UTF-8 by construction, checked by no one again.
    Gb18030 {
        input: Box<Gb18030Text<Box<dyn Read + Send>>>,
        text: String,
    },
}

impl Source {
    fn block(&self) -> &[u8] {
        match &self.input {
            Input::Bytes { buf, .. } => buf,
            Input::Gb18030 { text, .. } => text.as_bytes(),
        }
    }

    /// The text of `range` of the block when the block is decoded text (`None` for bytes, or a
    /// range that cuts a character).
    fn decoded(&self, range: std::ops::Range<usize>) -> Option<&str> {
        match &self.input {
            Input::Bytes { .. } => None,
            Input::Gb18030 { text, .. } => text.get(range),
        }
    }

    /// Reads the next block (the last one is split whole by now); its length, 0 at the end.
    fn fill(&mut self) -> std::result::Result<usize, String> {
        // After the first, small, block: a buffer of `block` bytes in its place (the last block
        // is used up; a fresh buffer is neither copied nor zeroed by hand, and this runs beside
        // the header's reading, after it).
        let grow = !std::mem::take(&mut self.first);
        let block = self.block;
        match &mut self.input {
            Input::Bytes { input, buf } => {
                if grow && buf.len() < block {
                    *buf = vec![0; block];
                }
                read_some(input, buf).map_err(|e| e.to_string())
            }
            Input::Gb18030 { input, text } => {
                if grow && text.capacity() < block {
                    *text = String::with_capacity(block);
                }
                input.fill(text).map_err(|e| e.to_string())?;
                Ok(text.len())
            }
        }
    }
}

/// The size of a splitter's block.
const BLOCK: usize = 1 << 20;
/// The size of its first block, which holds the header (see [`Source`]).
const FIRST_BLOCK: usize = 64 * 1024;

impl CsvSplitter {
    /// A splitter of UTF-8 bytes.
    fn new(input: Box<dyn Read + Send>) -> CsvSplitter {
        Self::with(Source {
            input: Input::Bytes {
                input,
                buf: vec![0; FIRST_BLOCK],
            },
            block: BLOCK,
            first: true,
        })
    }

    /// A splitter of GB18030 text, decoded into blocks of `block` bytes.
    fn gb18030(input: Gb18030Text<Box<dyn Read + Send>>, block: usize) -> CsvSplitter {
        Self::with(Source {
            input: Input::Gb18030 {
                input: Box::new(input),
                text: String::with_capacity(block.min(FIRST_BLOCK)),
            },
            block,
            first: true,
        })
    }

    fn with(source: Source) -> CsvSplitter {
        CsvSplitter {
            core: csv_core::Reader::new(),
            source,
            out: vec![0; 1024],
            ends: vec![0; 32],
            records: 0,
            pos: 0,
            len: 0,
            eof: false,
        }
    }

    /// The error for text that is not UTF-8 in field `field` (1-based) of the current record.
    fn not_utf8(&self, field: usize) -> String {
        // The header is record 0.
        match self.records {
            0 => format!("invalid UTF-8 in field {field} of the header"),
            n => format!("invalid UTF-8 in field {field} of record {n}"),
        }
    }

    /// The next record's fields into the chunk's open record (empty until now); false at the
    /// end of the text. An I/O error, or text that is not UTF-8, is an error (and leaves the open
    /// record empty).
    fn read(&mut self, chunk: &mut Chunk) -> std::result::Result<bool, String> {
        if let Some(done) = self.read_plain(chunk) {
            return done;
        }
        let (mut n_out, mut n_ends) = (0, 0);
        let more = loop {
            if self.pos == self.len && !self.eof {
                self.pos = 0;
                self.len = self.source.fill()?;
                self.eof = self.len == 0;
            }
            // Empty input tells csv-core the text ended.
            let (res, read, wrote, ended) = self.core.read_record(
                &self.source.block()[self.pos..self.len],
                &mut self.out[n_out..],
                &mut self.ends[n_ends..],
            );
            self.pos += read;
            n_out += wrote;
            n_ends += ended;
            match res {
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::OutputFull => self.out.resize(self.out.len() * 2, 0),
                csv_core::ReadRecordResult::OutputEndsFull => {
                    self.ends.resize(self.ends.len() * 2, 0)
                }
                csv_core::ReadRecordResult::Record => break true,
                csv_core::ReadRecordResult::End => break false,
            }
        };
        let ends = &self.ends[..n_ends];
        let bad =
            |at: usize| Err(self.not_utf8(ends.iter().take_while(|end| **end <= at).count() + 1));
        let text = match std::str::from_utf8(&self.out[..n_out]) {
            Ok(text) => text,
            Err(e) => return bad(e.valid_up_to()),
        };
        // The record is UTF-8 as a whole; each field must be too (a character cut in two by a
        // delimiter would join up across it).
        if let Some(end) = ends.iter().find(|end| !text.is_char_boundary(**end)) {
            return bad(*end - 1);
        }
        let mut start = 0;
        for &end in ends {
            chunk.push_field(&text[start..end]);
            start = end;
        }
        self.records += i64::from(more);
        Ok(more)
    }

    /// The next record when it lies whole in the block read and holds no quote (nearly every
    /// record of an export): split at its commas straight from the block, without csv-core's
    /// state machine and its copy, as csv-core would split it. `None` leaves the record to
    /// csv-core: one with a quote, one that runs past the block, and the last record of a text
    /// that does not end in a line break.
    fn read_plain(&mut self, chunk: &mut Chunk) -> Option<std::result::Result<bool, String>> {
        let block = &self.source.block()[self.pos..self.len];
        // Line breaks before a record are blank lines, which csv-core skips too.
        let start = block.iter().position(|b| *b != b'\n' && *b != b'\r')?;
        let rest = &block[start..];
        // csv-core ends a record at `\r` or `\n` alike (the `\n` of a `\r\n` is then a blank line).
        let end = memchr::memchr3(b'\n', b'\r', b'"', rest)?;
        if rest[end] == b'"' {
            return None;
        }
        let line = &rest[..end];
        // Decoded text is sliced as it is: its ends are at line breaks, one byte each.
        let decoded = self
            .source
            .decoded(self.pos + start..self.pos + start + end);
        let text = match decoded.map_or_else(|| std::str::from_utf8(line), Ok) {
            Ok(text) => text,
            Err(e) => {
                let field = memchr::memchr_iter(b',', &line[..e.valid_up_to()]).count() + 1;
                return Some(Err(self.not_utf8(field)));
            }
        };
        // A comma is one byte of its own in UTF-8: every field ends on a character boundary.
        chunk.push_line(text);
        self.pos += start + end + 1;
        self.records += 1;
        Some(Ok(true))
    }
}

/// Records of one chunk: sending them one by one would cost more than reading. A chunk is sent
/// with fewer when its text reaches [`CHUNK_TEXT`] (records of a few hundred bytes fill 1,024
/// long before that).
const CHUNK_RECORDS: usize = 1024;
const CHUNK_TEXT: usize = 1 << 20;
/// Chunks that may wait for the checks (about 8,000 records: a queue rides out the moments when
/// the checks or the reader lose their core to another stage). 16 held 7-9 MiB more at the peak
/// of a year of UTF-8 cases at scale 10 (3 for GB18030), where the reader runs ahead with the
/// queue full, for no shorter load: alternating hand runs of a year of GB18030 at scale 10 took
/// 0.44 s with 16, 0.445 s with 8 and 0.45 s with 12 (medians of ten, the same CPU time).
const QUEUE_CHUNKS: usize = 8;

/// What a reader thread sends: records in file order, then the end or the one read error that
/// stops the file. A channel that closes without either means the reader died (a panic): that
/// is an error, never the end of the file.
enum Msg {
    Records(Chunk),
    End,
    Failed(String),
}

/// A file's reading stopped before its end without an error of its own: a reader thread died,
/// or the splitter panicked (a bug).
const READER_STOPPED: &str = "the reader of the file stopped before its end";

/// The reading end of a file's records: chunk after chunk, from a reader thread or read on the
/// spot.
struct Feed {
    supply: Supply,
    current: Chunk,
    next: usize,
}

/// Where a feed's chunks come from.
enum Supply {
    /// A reader thread, up to [`QUEUE_CHUNKS`] chunks ahead of the checks.
    Thread {
        chunks: Receiver<Msg>,
        /// Chunks handed back, so that their buffers are reused.
        spare: Sender<Chunk>,
    },
    /// The checks' own thread, one chunk whenever the last is done: a CSV file under
    /// [`READER_THREAD_BYTES`].
    Here(Box<CsvRecords>),
}

/// A CSV text read into chunks, record after record, each numbered by its position.
struct CsvRecords {
    csv: CsvSplitter,
    records: i64,
    /// The end of the text or the error that stopped it, once reached; handed out once.
    end: Option<std::result::Result<(), String>>,
    ended: bool,
}

impl CsvRecords {
    fn new(csv: CsvSplitter) -> CsvRecords {
        CsvRecords {
            csv,
            records: 0,
            end: None,
            ended: false,
        }
    }

    /// Reads records into the chunk until it is full ([`CHUNK_RECORDS`] or [`CHUNK_TEXT`]) or
    /// the text ends; at the end, or at an error (an I/O error, text that is not UTF-8, a record
    /// too long), the records before it stay in the chunk and `end` is set.
    fn fill(&mut self, chunk: &mut Chunk) {
        while !self.ended && !chunk.is_full() {
            let end = match self.csv.read(chunk) {
                Ok(true) => {
                    self.records += 1;
                    match chunk.end_record(self.records) {
                        Ok(()) => continue,
                        Err(message) => Err(message),
                    }
                }
                Ok(false) => Ok(()),
                Err(message) => Err(message),
            };
            chunk.discard_open();
            self.end = Some(end);
            self.ended = true;
        }
    }
}

impl Feed {
    /// The next record: its position and fields, or `None` at the end. Not to be called again
    /// after it returned `None` or an error: it then returns an error (a reader thread's channel
    /// is closed by then, which reads as a reader that died).
    fn next(&mut self) -> std::result::Result<Option<(i64, Fields<'_>)>, String> {
        while self.next == self.current.len() {
            self.next = 0;
            match &mut self.supply {
                Supply::Thread { chunks, spare } => {
                    let done = std::mem::take(&mut self.current);
                    // The reader may have stopped already (end of file): the chunk is then
                    // dropped.
                    let _ = spare.send(done);
                    match chunks.recv() {
                        Ok(Msg::Records(chunk)) => self.current = chunk,
                        Ok(Msg::End) => return Ok(None),
                        Ok(Msg::Failed(message)) => return Err(message),
                        Err(_) => return Err(READER_STOPPED.into()),
                    }
                }
                Supply::Here(csv) => {
                    if let Some(end) = csv.end.take() {
                        return end.map(|()| None);
                    }
                    if csv.ended {
                        return Err("the file's records were read past their end".into());
                    }
                    self.current.clear();
                    // A panic in the splitter (a bug) fails this file, as it does on a reader
                    // thread, rather than the command.
                    let current = &mut self.current;
                    let filled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        csv.fill(current)
                    }));
                    if filled.is_err() {
                        csv.ended = true;
                        return Err(READER_STOPPED.into());
                    }
                }
            }
        }
        self.next += 1;
        Ok(Some(self.current.record(self.next - 1)))
    }
}

/// The writing end of a file's reader thread: fills the open record of a chunk and sends the
/// chunk when full (chunks handed back are reused).
struct Sink {
    tx: SyncSender<Msg>,
    spares: Receiver<Chunk>,
    chunk: Chunk,
    /// The end or an error was sent.
    done: bool,
}

impl Sink {
    /// The chunk whose open record is filled next.
    fn chunk(&mut self) -> &mut Chunk {
        &mut self.chunk
    }

    /// The open record is filled, and is at `position` in the file. False when the reader is
    /// to stop: the load stopped reading, or the record is too long (which fails the file).
    fn push(&mut self, position: i64) -> bool {
        if let Err(message) = self.chunk.end_record(position) {
            self.fail(message);
            return false;
        }
        !self.chunk.is_full() || self.flush()
    }

    fn flush(&mut self) -> bool {
        self.chunk.discard_open();
        if self.chunk.len() == 0 {
            return true;
        }
        let mut next = self.spares.try_recv().unwrap_or_default();
        next.clear();
        let chunk = std::mem::replace(&mut self.chunk, next);
        self.tx.send(Msg::Records(chunk)).is_ok()
    }

    /// Sends the records before the error, then the error, which ends the file.
    fn fail(&mut self, message: String) {
        if !self.done && self.flush() {
            let _ = self.tx.send(Msg::Failed(message));
        }
        self.done = true;
    }

    /// Sends the last records and the end (unless the file failed).
    fn finish(&mut self) {
        if !self.done && self.flush() {
            let _ = self.tx.send(Msg::End);
        }
        self.done = true;
    }
}

/// Starts reading a file's records on a reader thread, so that reading, decoding and splitting
/// run beside the checks. `read` pushes every record into the sink, or fails it.
fn spawn_reader<F>(read: F) -> Feed
where
    F: FnOnce(&mut Sink) + Send + 'static,
{
    let (tx, chunks) = sync_channel(QUEUE_CHUNKS);
    let (spare, spares) = channel::<Chunk>();
    READERS.run(Box::new(move || {
        let mut sink = Sink {
            tx,
            spares,
            chunk: Chunk::default(),
            done: false,
        };
        read(&mut sink);
        sink.finish();
    }));
    Feed {
        supply: Supply::Thread { chunks, spare },
        current: Chunk::default(),
        next: 0,
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Threads that serve job after job of one kind, each waiting for the next for a while. With a
/// new thread per file, glibc's allocator gave each its own arena, and the memory freed in those
/// arenas stayed with the process. A kind of work keeps to its own pool, so that what one file's
/// reading frees (an XLSX shared-strings table, say) is reused by the next file's reading rather
/// than kept aside in the arena of a thread that now hashes.
struct Pool {
    name: &'static str,
    /// Threads waiting for a job, by id.
    idle: Mutex<Vec<(u64, Sender<Job>)>>,
    ids: AtomicU64,
}

/// Reader threads: a file's records (see [`spawn_reader`]).
static READERS: Pool = Pool::new("plsw-reader");
/// Hashing threads: the next file's fingerprint, while this one streams.
static HASHERS: Pool = Pool::new("plsw-hasher");
/// An idle pooled thread ends after this long without a job.
const POOL_IDLE: Duration = Duration::from_secs(30);

impl Pool {
    const fn new(name: &'static str) -> Pool {
        Pool {
            name,
            idle: Mutex::new(Vec::new()),
            ids: AtomicU64::new(0),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Sender<Job>)>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&'static self, job: Job) {
        let idle = self.idle().pop();
        let job = match idle {
            // An idle thread takes the job. (A listed thread never ends without taking itself
            // off the list first, and one that panicked never lists itself again; a failed send
            // would still fall back to a new thread.)
            Some((_, worker)) => match worker.send(job) {
                Ok(()) => return,
                Err(std::sync::mpsc::SendError(back)) => back,
            },
            None => job,
        };
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name(self.name.into())
            .spawn(move || {
                let mut next = Some(job);
                while let Some(job) = next.take() {
                    job();
                    self.idle().push((id, tx.clone()));
                    next = match rx.recv_timeout(POOL_IDLE) {
                        Ok(job) => Some(job),
                        Err(_) => {
                            let mut idle = self.idle();
                            match idle.iter().position(|(i, _)| *i == id) {
                                // Still listed: no job can come any more.
                                Some(at) => {
                                    idle.remove(at);
                                    None
                                }
                                // Taken off the list by a sender: its job is on the way.
                                None => {
                                    drop(idle);
                                    rx.recv().ok()
                                }
                            }
                        }
                    };
                }
            });
        if let Err(e) = spawned {
            // The job is dropped unrun: its file fails ("stopped before its end").
            tracing::error!(error = %e, pool = self.name, "starting a pooled thread");
        }
    }
}

/// Starts `work` on a pooled hashing thread; its result comes through the receiver, which fails
/// instead when no thread could run it (none could be started, or `work` panicked).
pub(crate) fn on_hashing_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> tokio::sync::oneshot::Receiver<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    HASHERS.run(Box::new(move || {
        let _ = tx.send(work());
    }));
    rx
}

enum Inner {
    Csv,
    /// The first sheet's rows (1-based sheet row, cells as text), read cell by cell: the sheet
    /// is never held whole. Trailing empty cells of a row are absent.
    Xlsx {
        width: usize,
    },
}

/// A file's header and how its fields map onto a table's columns.
struct Shape {
    inner: Inner,
    headers: Vec<String>,
    /// For each table column, the index of its field in the file, if present.
    map: Vec<Option<usize>>,
}

/// A file's records, with the header resolved against a table's columns. A workbook or a long
/// CSV file is read on a reader thread, ahead of the checks; a short CSV file on the spot
/// ([`READER_THREAD_BYTES`]).
pub(crate) struct Records {
    feed: Feed,
    shape: Shape,
}

impl Records {
    /// Opens a file and resolves its header. A missing column that `header_required` names is a
    /// file-level error; unknown extra columns are ignored.
    pub(crate) fn open(
        path: &Path,
        encoding: Encoding,
        table: &Table,
        header_required: &dyn Fn(&str) -> bool,
    ) -> Result<Records> {
        let (inner, feed, headers) = match encoding {
            Encoding::Xlsx => open_xlsx(path)?,
            _ => open_csv(path, encoding, READER_THREAD_BYTES)?,
        };
        let map: Vec<Option<usize>> = table
            .columns
            .iter()
            .map(|c| {
                headers.iter().position(|h| {
                    let h = h.trim().trim_start_matches('\u{feff}');
                    h.eq_ignore_ascii_case(c.name) || c.zh.contains(&h)
                })
            })
            .collect();
        let missing: Vec<String> = table
            .columns
            .iter()
            .zip(&map)
            .filter(|(c, m)| m.is_none() && header_required(c.name))
            .map(|(c, _)| match c.zh.first() {
                Some(zh) => format!("{} ({zh})", c.name),
                None => c.name.to_string(),
            })
            .collect();
        if !missing.is_empty() {
            return Err(Error::MissingColumns {
                path: path.to_path_buf(),
                columns: missing.join(", "),
                found: headers.join(", "),
            });
        }
        Ok(Records {
            feed,
            shape: Shape {
                inner,
                headers,
                map,
            },
        })
    }

    /// The next record, or `None` at the end. A read error (I/O, malformed encoding) is
    /// file-level: the load of this file stops and nothing of it is committed.
    pub(crate) fn next(&mut self, path: &Path) -> Result<Option<Record<'_>>> {
        let Records { feed, shape } = self;
        match feed.next() {
            Ok(Some((position, fields))) => Ok(Some(Record {
                position,
                fields,
                shape,
            })),
            Ok(None) => Ok(None),
            Err(message) => Err(Error::Read {
                path: path.to_path_buf(),
                message,
            }),
        }
    }
}

/// One record of a file, borrowed from the chunk it came in.
pub(crate) struct Record<'a> {
    /// 1-based CSV data record, or XLSX sheet row.
    pub(crate) position: i64,
    /// Its fields, in the file's own column order.
    fields: Fields<'a>,
    shape: &'a Shape,
}

impl<'a> Record<'a> {
    /// The value of table column `col` ("" when the file lacks the column, or a workbook's row
    /// ends before it).
    pub(crate) fn value(&self, col: usize) -> &'a str {
        match self.shape.map[col] {
            Some(i) => self.fields.get(i).unwrap_or(""),
            None => "",
        }
    }

    /// Its fields.
    pub(crate) fn len(&self) -> usize {
        self.fields.len()
    }

    pub(crate) fn header_len(&self) -> usize {
        self.shape.headers.len()
    }

    /// Whether the record has as many fields as the header (a workbook's row always has: its
    /// empty cells are absent).
    pub(crate) fn well_formed(&self) -> bool {
        match self.shape.inner {
            Inner::Csv => self.fields.len() == self.shape.headers.len(),
            Inner::Xlsx { .. } => true,
        }
    }

    /// The raw values of a record as a JSON object `{header: value}` (text), for quarantine. A
    /// workbook's row has every column of its header, empty where its cells are absent.
    pub(crate) fn raw_json(&self) -> String {
        let width = match self.shape.inner {
            Inner::Csv => self.fields.len(),
            Inner::Xlsx { width } => self.fields.len().max(width),
        };
        let mut obj = serde_json::Map::new();
        for i in 0..width {
            let key = self
                .shape
                .headers
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("_extra_{}", i + 1));
            let value = self.fields.get(i).unwrap_or("");
            obj.insert(key, serde_json::Value::String(value.to_string()));
        }
        serde_json::Value::Object(obj).to_string()
    }

    /// Whether a record has no cell at all (a blank trailing XLSX row), which is skipped. A row
    /// with a space in a cell is a record (and is quarantined if that breaks a rule).
    pub(crate) fn is_blank(&self) -> bool {
        self.fields.iter().all(str::is_empty)
    }

    /// The first XLSX cell holding an error (`#DIV/0!`, `#REF!` …) of a record, if any.
    pub(crate) fn cell_error(&self) -> Option<String> {
        let Inner::Xlsx { .. } = self.shape.inner else {
            return None;
        };
        self.fields.iter().enumerate().find_map(|(i, f)| {
            f.strip_prefix(CELL_ERROR).map(|e| {
                format!(
                    "column {}: the cell holds the error {e}",
                    self.shape.headers.get(i).map(String::as_str).unwrap_or("?")
                )
            })
        })
    }
}

/// CSV files of this size and more are read on a reader thread beside the checks; smaller ones on
/// the checks' own thread. A thread pays for itself on a long file, whose reading it takes off
/// the checks' thread: a year of mediation cases at scale 10 (twelve UTF-8 files of 47-75 MB)
/// loaded in 2.74 s with it and 2.88 s without. On files of a few MB it costs more than it
/// saves: every record's text is written on one core and read on the other, and every file
/// starts and drains a pipeline. A year of legal-aid cases at scale 10 (twelve GB18030 files of
/// about 8 MB) loaded in 0.43 s without it and 0.44 s with it, and a year of mediation at scale 1
/// (twelve UTF-8 files of about 7 MB) in 0.34 against 0.36 s (medians of 21 to 90 alternating
/// loads with the cores near each other). With the cores far apart (see `docs/benchmarks.md`,
/// where the time goes) the legal-aid year took 0.49 s without the thread and 0.53 s with it, and
/// a fifth less CPU time. Where between 8 and 47 MB the two cross was not measured.
const READER_THREAD_BYTES: u64 = 16 << 20;

/// Opens a CSV file: its header is read here, its records on a reader thread when the file has
/// `thread_from` bytes or more, else on the caller's thread as they are asked for.
fn open_csv(
    path: &Path,
    encoding: Encoding,
    thread_from: u64,
) -> Result<(Inner, Feed, Vec<String>)> {
    // The splitter reads in blocks of its own: the file needs no buffer around it.
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    // A file whose size cannot be told (a pipe) is read on a thread, as a long one.
    let on_thread = file.metadata().map_or(true, |m| m.len() >= thread_from);
    if encoding == Encoding::Utf8Bom {
        let mut bom = [0u8; 3];
        file.read_exact(&mut bom).map_err(|e| Error::io(path, e))?;
    }
    let file: Box<dyn Read + Send> = Box::new(file);
    let mut csv = match encoding {
        Encoding::Gb18030 => CsvSplitter::gb18030(Gb18030Text::new(file), BLOCK),
        _ => CsvSplitter::new(file),
    };
    let mut first = Chunk::default();
    let read_err = |message: String| Error::Read {
        path: path.to_path_buf(),
        message,
    };
    csv.read(&mut first).map_err(read_err)?;
    let mut headers: Vec<String> = first.open_fields().iter().map(str::to_string).collect();
    // A byte order mark decoded from GB18030 (or left by a second one).
    if let Some(h) = headers.first_mut() {
        if let Some(rest) = h.strip_prefix('\u{feff}') {
            *h = rest.to_string();
        }
    }
    if headers.iter().all(|h| h.trim().is_empty()) {
        return Err(read_err("no header row".into()));
    }
    let mut records = CsvRecords::new(csv);
    if !on_thread {
        let feed = Feed {
            supply: Supply::Here(Box::new(records)),
            current: Chunk::default(),
            next: 0,
        };
        return Ok((Inner::Csv, feed, headers));
    }
    let feed = spawn_reader(move |sink: &mut Sink| loop {
        records.fill(sink.chunk());
        match records.end.take() {
            None => {
                if !sink.flush() {
                    return;
                }
            }
            // The sink sends the last records and the end.
            Some(Ok(())) => return,
            Some(Err(message)) => return sink.fail(message),
        }
    });
    Ok((Inner::Csv, feed, headers))
}

fn open_xlsx(path: &Path) -> Result<(Inner, Feed, Vec<String>)> {
    let read_err = |message: String| Error::Read {
        path: path.to_path_buf(),
        message,
    };
    let file = BufReader::new(File::open(path).map_err(|e| Error::io(path, e))?);
    // The workbook is opened on the reader thread too (its shared-strings table is read whole
    // there): what it allocates is freed where it was allocated, and the thread serves the next
    // file with the same memory. Errors come back as the header's.
    let mut feed = spawn_reader(move |sink: &mut Sink| {
        let mut book = match Workbook::open(file) {
            Ok(b) => b,
            Err(e) => return sink.fail(e),
        };
        let mut cells = match book.first_sheet() {
            Ok(c) => c,
            Err(e) => return sink.fail(e),
        };
        // Cells come row by row, left to right; a row ends where the next one starts. Its
        // position is its 1-based sheet row.
        let mut row: Option<u32> = None;
        let mut text = String::new();
        loop {
            let (r, c, cell) = match cells.next_cell(&mut text) {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => return sink.fail(e),
            };
            if row != Some(r) {
                if let Some(done) = row {
                    if !sink.push(i64::from(done) + 1) {
                        return;
                    }
                }
                row = Some(r);
            }
            if cell == xlsx::Cell::Error {
                text.insert_str(0, CELL_ERROR);
            }
            set_field(sink.chunk(), c as usize, &text);
        }
        if let Some(done) = row {
            sink.push(i64::from(done) + 1);
        }
    });
    let headers: Vec<String> = match feed.next() {
        Ok(Some((_, first))) => first.iter().map(str::to_string).collect(),
        Ok(None) => return Err(read_err("the first sheet is empty".into())),
        Err(message) => return Err(read_err(message)),
    };
    let width = headers.len();
    Ok((Inner::Xlsx { width }, feed, headers))
}

/// Sets field `at` of the chunk's open record, as empty fields up to it. Cells come left to
/// right (empty ones are absent), so this appends; a workbook whose cells come out of order, or
/// twice, still puts each value in its own column (the later of two wins), by rebuilding the
/// record.
fn set_field(chunk: &mut Chunk, at: usize, text: &str) {
    let len = chunk.open_fields().len();
    if at >= len {
        for _ in len..at {
            chunk.push_field("");
        }
        chunk.push_field(text);
        return;
    }
    let mut all: Vec<String> = chunk.open_fields().iter().map(str::to_string).collect();
    all[at] = text.to_string();
    chunk.discard_open();
    for f in &all {
        chunk.push_field(f);
    }
}

/// Marks a cell that held a spreadsheet error, so the record is quarantined (`bad_cell`).
const CELL_ERROR: &str = "\u{0}#CELL_ERROR ";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_on_a_hashing_thread_returns_its_result_or_fails_when_it_panics() {
        let name = on_hashing_thread(|| std::thread::current().name().map(str::to_string));
        assert_eq!(name.await.expect("a result"), Some("plsw-hasher".into()));
        let panicked = on_hashing_thread(|| -> u32 { panic!("a parser bug") });
        assert!(panicked.await.is_err());
        // The pool still serves after a job panicked.
        assert_eq!(on_hashing_thread(|| 7).await.expect("a result"), 7);
    }

    /// The positions of a feed's records, each checked to hold its own number, then the end.
    fn drain(mut feed: Feed) -> (Vec<i64>, std::result::Result<(), String>) {
        let mut seen = Vec::new();
        loop {
            match feed.next() {
                Ok(Some((position, fields))) => {
                    let want = [position.to_string(), "x".repeat(position as usize % 7)];
                    assert!(
                        fields.iter().eq(want.iter().map(String::as_str)),
                        "{fields:?}"
                    );
                    seen.push(position)
                }
                Ok(None) => return (seen, Ok(())),
                Err(e) => return (seen, Err(e)),
            }
        }
    }

    /// Records 1 to `n`, each of two fields: its number, and as many x as its number modulo 7.
    fn numbered(sink: &mut Sink, n: i64) -> bool {
        for i in 1..=n {
            sink.chunk().push_field(&i.to_string());
            sink.chunk().push_field(&"x".repeat(i as usize % 7));
            if !sink.push(i) {
                return false;
            }
        }
        true
    }

    #[test]
    fn records_come_in_order_across_chunks_then_the_end_or_the_error() {
        let n = CHUNK_RECORDS as i64 * 3 + 5;
        let (seen, end) = drain(spawn_reader(move |sink| {
            numbered(sink, n);
        }));
        assert_eq!(seen, (1..=n).collect::<Vec<_>>());
        assert_eq!(end, Ok(()));
        // The records before an error come first, then the error.
        let (seen, end) = drain(spawn_reader(|sink| {
            if numbered(sink, 10) {
                sink.fail("bad byte".into());
            }
        }));
        assert_eq!(seen.len(), 10);
        assert_eq!(end, Err("bad byte".into()));
    }

    #[test]
    fn a_reader_that_dies_is_an_error_not_the_end_of_the_file() {
        let (seen, end) = drain(spawn_reader(|sink| {
            numbered(sink, CHUNK_RECORDS as i64 + 1);
            panic!("the reader panicked (as this test wants)");
        }));
        assert_eq!(seen.len(), CHUNK_RECORDS, "the full chunk was sent");
        assert!(end.is_err(), "{end:?}");
    }

    #[test]
    fn a_workbook_that_cannot_be_read_fails_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.xlsx");
        std::fs::write(&path, b"PK\x03\x04 not really a workbook").unwrap();
        let opened = Records::open(&path, Encoding::Xlsx, &plsw_schemas::tables::CASES, &|_| {
            true
        });
        match opened {
            Err(Error::Read { message, .. }) => assert!(!message.is_empty()),
            Err(e) => panic!("another error: {e}"),
            Ok(_) => panic!("a broken workbook opened"),
        }
    }

    /// Hands out its text a few bytes at a time, so that records straddle reads: those are
    /// split by csv-core, the others by the splitter's own path for plain records.
    struct Trickle(std::io::Cursor<Vec<u8>>, usize);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.1);
            self.0.read(&mut buf[..n])
        }
    }

    /// The records and the end of a text, which must be the same read whole and read in
    /// pieces of 1, 2, 3, 5 and 8 bytes; and for UTF-8 text, the same again encoded in GB18030
    /// and decoded in reads of a few bytes into blocks of a few bytes.
    fn split(text: &[u8]) -> (Vec<Vec<String>>, std::result::Result<(), String>) {
        let mut out = Vec::new();
        let mut splitters = Vec::new();
        for step in [0, 1, 2, 3, 5, 8] {
            let input: Box<dyn Read + Send> = if step > 0 {
                Box::new(Trickle(std::io::Cursor::new(text.to_vec()), step))
            } else {
                Box::new(std::io::Cursor::new(text.to_vec()))
            };
            splitters.push(CsvSplitter::new(input));
        }
        if let Ok(utf8) = std::str::from_utf8(text) {
            let (gb, _, unmappable) = encoding_rs::GB18030.encode(utf8);
            assert!(!unmappable);
            for (input, block) in [(1, 4), (2, 5), (3, 8), (8, 16), (4096, BLOCK)] {
                let file: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(gb.to_vec()));
                let decoder = Gb18030Text::with_input_size(file, input);
                splitters.push(CsvSplitter::gb18030(decoder, block));
            }
        }
        for mut csv in splitters {
            // Records into one chunk, each read back as it ended and all once more at the end.
            let mut chunk = Chunk::default();
            let mut records = Vec::new();
            let end = loop {
                match csv.read(&mut chunk) {
                    Ok(true) => {
                        records.push(chunk.open_fields().iter().map(str::to_string).collect());
                        chunk.end_record(records.len() as i64).unwrap();
                    }
                    Ok(false) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            assert_eq!(chunk.open_fields().len(), 0, "nothing left open: {text:?}");
            let again: Vec<Vec<String>> = (0..chunk.len())
                .map(|i| chunk.record(i).1.iter().map(str::to_string).collect())
                .collect();
            assert_eq!(again, records);
            out.push((records, end));
        }
        for other in &out[1..] {
            assert_eq!(
                &out[0], other,
                "whole and trickled text split alike: {text:?}"
            );
        }
        out.swap_remove(0)
    }

    /// What csv-core alone makes of a text: the reference for the splitter's own path.
    fn csv_core_records(text: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let mut core = csv_core::Reader::new();
        let (mut out, mut ends) = (vec![0u8; 4096], vec![0usize; 256]);
        let (mut input, mut records) = (text, Vec::new());
        let (mut n_out, mut n_ends) = (0, 0);
        loop {
            let (res, read, wrote, ended) =
                core.read_record(input, &mut out[n_out..], &mut ends[n_ends..]);
            input = &input[read..];
            n_out += wrote;
            n_ends += ended;
            match res {
                csv_core::ReadRecordResult::Record => {
                    let mut start = 0;
                    let fields = ends[..n_ends]
                        .iter()
                        .map(|&end| {
                            let field = out[start..end].to_vec();
                            start = end;
                            field
                        })
                        .collect();
                    records.push(fields);
                    (n_out, n_ends) = (0, 0);
                }
                csv_core::ReadRecordResult::End => return records,
                csv_core::ReadRecordResult::InputEmpty => {}
                other => panic!("the reference's buffers are too small: {other:?}"),
            }
        }
    }

    #[test]
    fn plain_records_split_as_csv_core_splits_them() {
        // Texts of commas, quotes, line breaks of every kind, spaces, Chinese and the odd byte
        // that is not UTF-8, from a fixed pseudo-random sequence.
        let pieces: [&[u8]; 9] = [
            b"a",
            "中".as_bytes(),
            b",",
            b",",
            b"\"",
            b"\r",
            b"\n",
            b" ",
            b"\xff",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |n: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize % n
        };
        let mut plain = 0;
        for _ in 0..400 {
            let mut text = Vec::new();
            for _ in 0..5 + next(40) {
                // Letters often, the odd byte rarely.
                let piece = match next(pieces.len() * 4) {
                    i if i < pieces.len() - 1 => pieces[i],
                    i if i == pieces.len() - 1 && next(7) == 0 => pieces[i],
                    _ => b"a",
                };
                text.extend_from_slice(piece);
            }
            let (records, end) = split(&text);
            let want = csv_core_records(&text);
            // Up to an error, the same records as csv-core.
            let got: Vec<Vec<Vec<u8>>> = records
                .iter()
                .map(|r| r.iter().map(|f| f.as_bytes().to_vec()).collect())
                .collect();
            assert_eq!(got, want[..got.len()], "{text:?}");
            match &end {
                Ok(()) => assert_eq!(got.len(), want.len(), "{text:?}"),
                Err(e) => {
                    let bad = &want[got.len()];
                    assert!(bad.iter().any(|f| std::str::from_utf8(f).is_err()), "{e}");
                }
            }
            // Texts with a plain record after the first (the first is csv-core's, which reads
            // the first block).
            plain += usize::from(got.len() > 2 && !text.contains(&b'"'));
        }
        assert!(plain > 50, "enough texts of plain records: {plain}");
    }

    #[test]
    fn csv_records_split_with_quotes_line_endings_and_blank_lines() {
        let long = "长".repeat(400);
        let text =
            format!("a,b,c\r\n豫01,\"x, \"\"y\"\"\",\n\n\"two\nlines\",{long},\r\nshort\nlast,,z");
        let (records, end) = split(text.as_bytes());
        assert_eq!(end, Ok(()));
        let want: Vec<Vec<String>> = vec![
            vec!["a".into(), "b".into(), "c".into()],
            vec!["豫01".into(), "x, \"y\"".into(), "".into()],
            vec!["two\nlines".into(), long.clone(), "".into()],
            vec!["short".into()],
            vec!["last".into(), "".into(), "z".into()],
        ];
        assert_eq!(records, want);
        assert_eq!(split(b"").0, Vec::<Vec<String>>::new());
        // More fields than the splitter first makes room for.
        let wide: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        assert_eq!(split(wide.join(",").as_bytes()).0, vec![wide]);
    }

    #[test]
    fn commas_are_found_at_every_position_of_a_word_and_in_the_tail() {
        let naive = |line: &[u8]| -> Vec<usize> {
            line.iter()
                .enumerate()
                .filter(|(_, b)| **b == b',')
                .map(|(i, _)| i)
                .collect()
        };
        // Commas beside bytes that differ from a comma in one bit, or with the top bit set
        // (0xac is a comma with it), and Chinese.
        let pieces: [&[u8]; 7] = [b",", b"-", b".", b"\xac", b"\x00", b"a", "援".as_bytes()];
        let mut seed: u64 = 7;
        for len in 0..40 {
            for _ in 0..50 {
                let mut line = Vec::new();
                while line.len() < len {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    line.extend_from_slice(pieces[(seed >> 33) as usize % pieces.len()]);
                }
                let mut got = vec![99];
                commas(&line, &mut got);
                let got: Vec<usize> = got.into_iter().map(|e| e as usize).collect();
                assert_eq!(got[1..], naive(&line)[..], "{line:?}");
            }
        }
    }

    #[test]
    fn records_across_the_small_first_block_and_the_full_ones_after_it() {
        // About 3 first blocks of text, in lines of varying length with Chinese in them, and a
        // quoted field now and then, so that records straddle the first block's end and the
        // second's in both the plain and the csv-core path.
        let mut want: Vec<Vec<String>> = vec![vec!["编号".into(), "名称".into(), "备注".into()]];
        for i in 0..6000usize {
            let name = "援".repeat(1 + i % 13);
            let note = if i % 7 == 0 {
                format!("第{i}条, 含逗号")
            } else {
                "x".repeat(i % 5)
            };
            want.push(vec![format!("豫{i:06}"), name, note]);
        }
        let mut text = String::new();
        for r in &want {
            let note = if r[2].contains(',') {
                format!("\"{}\"", r[2])
            } else {
                r[2].clone()
            };
            text.push_str(&format!("{},{},{note}\r\n", r[0], r[1]));
        }
        assert!(text.len() > 3 * FIRST_BLOCK);
        let (records, end) = split(text.as_bytes());
        assert_eq!(end, Ok(()));
        assert_eq!(records, want);
        // The header comes from a first block of FIRST_BLOCK bytes; the blocks after it are
        // whole ones.
        let (gb, _, _) = encoding_rs::GB18030.encode(&text);
        let file = || -> Box<dyn Read + Send> { Box::new(std::io::Cursor::new(gb.to_vec())) };
        let bytes: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(text.clone().into_bytes()));
        for mut csv in [
            CsvSplitter::new(bytes),
            CsvSplitter::gb18030(Gb18030Text::new(file()), BLOCK),
        ] {
            let mut chunk = Chunk::default();
            assert_eq!(csv.read(&mut chunk), Ok(true));
            assert!(
                csv.len <= FIRST_BLOCK && csv.len > FIRST_BLOCK - 4,
                "{}",
                csv.len
            );
            let mut largest = 0;
            while csv.read(&mut chunk) == Ok(true) {
                largest = largest.max(csv.len);
                chunk.clear();
            }
            assert!(largest > 2 * FIRST_BLOCK, "{largest}");
        }
    }

    #[test]
    fn csv_text_that_is_not_utf8_stops_the_file_at_its_record() {
        let (records, end) = split(b"a,b\n1,2\n3,\xff\xfe\n5,6\n");
        assert_eq!(records.len(), 2);
        // The header is record 0.
        assert_eq!(end.unwrap_err(), "invalid UTF-8 in field 2 of record 2");
        // A character cut in two by a comma: the record as a whole is UTF-8, its fields are not.
        let cut = [b"a,b\n1,\xe8".as_slice(), b",\x81\x9a\n".as_slice()].concat();
        let (records, end) = split(&cut);
        assert_eq!(records.len(), 1, "the header");
        assert_eq!(end.unwrap_err(), "invalid UTF-8 in field 2 of record 1");
        let (_, end) = split(b"a,\xff\n");
        assert_eq!(end.unwrap_err(), "invalid UTF-8 in field 2 of the header");
    }

    #[test]
    fn cells_out_of_order_or_twice_land_in_their_own_columns() {
        let mut chunk = Chunk::default();
        // A record before, which the rebuilding leaves alone.
        chunk.push_field("before");
        chunk.end_record(1).unwrap();
        let open = |chunk: &Chunk| -> Vec<String> {
            chunk.open_fields().iter().map(str::to_string).collect()
        };
        set_field(&mut chunk, 0, "a");
        set_field(&mut chunk, 2, "c");
        assert_eq!(open(&chunk), ["a", "", "c"]);
        set_field(&mut chunk, 1, "b");
        set_field(&mut chunk, 0, "A");
        assert_eq!(open(&chunk), ["A", "b", "c"]);
        set_field(&mut chunk, 4, "e,f");
        assert_eq!(open(&chunk), ["A", "b", "c", "", "e,f"]);
        chunk.end_record(2).unwrap();
        let records: Vec<(i64, Vec<&str>)> = (0..chunk.len())
            .map(|i| {
                let (position, fields) = chunk.record(i);
                (position, fields.iter().collect())
            })
            .collect();
        assert_eq!(
            records,
            [(1, vec!["before"]), (2, vec!["A", "b", "c", "", "e,f"])]
        );
    }

    /// Records as positions and fields.
    type Numbered = Vec<(i64, Vec<String>)>;

    /// Every record of a feed and how it ended.
    fn records_of(mut feed: Feed) -> (Numbered, std::result::Result<(), String>) {
        let mut out = Vec::new();
        loop {
            match feed.next() {
                Ok(Some((position, fields))) => {
                    out.push((position, fields.iter().map(str::to_string).collect()))
                }
                Ok(None) => return (out, Ok(())),
                Err(message) => return (out, Err(message)),
            }
        }
    }

    #[test]
    fn a_csv_file_reads_the_same_on_a_reader_thread_and_on_the_spot() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("case_id,note\n");
        // Over two chunks of records, one of them quoted across a line break.
        for i in 1..=CHUNK_RECORDS * 2 + 3 {
            text.push_str(&format!("豫{i},a{}\n", "x".repeat(i % 5)));
        }
        text.push_str("\"q,1\",\"two\nlines\"\n");
        let good = dir.path().join("good.csv");
        std::fs::write(&good, &text).unwrap();
        // A byte that is not UTF-8 in the record after the good ones.
        let mut bytes = text.clone().into_bytes();
        bytes.extend_from_slice(b"bad,\xff\nafter,1\n");
        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, &bytes).unwrap();
        // A record longer than a record may be (1 MiB in tests), after two that are not.
        let too_long = dir.path().join("long.csv");
        let long = "长".repeat(100 * 1024);
        std::fs::write(
            &too_long,
            format!("a\n{long}\n{long}\n{}\nlast\n", "x".repeat(MAX_RECORD + 1)),
        )
        .unwrap();
        let size = |p: &Path| std::fs::metadata(p).unwrap().len();
        for path in [&good, &bad, &too_long] {
            let read = |thread_from: u64| {
                let (_, feed, headers) = open_csv(path, Encoding::Utf8, thread_from).unwrap();
                let on_thread = matches!(feed.supply, Supply::Thread { .. });
                (on_thread, headers, records_of(feed))
            };
            // At the threshold a file goes to a thread; under it, it is read on the spot.
            let (on_thread, headers, threaded) = read(size(path));
            assert!(on_thread);
            let (on_thread, headers_here, here) = read(size(path) + 1);
            assert!(!on_thread);
            assert_eq!(headers, headers_here);
            assert_eq!(threaded, here, "{}", path.display());
        }
        // Every record, in order, numbered from 1.
        let mut want: Numbered = (1..=CHUNK_RECORDS * 2 + 3)
            .map(|i| {
                (
                    i as i64,
                    vec![format!("豫{i}"), format!("a{}", "x".repeat(i % 5))],
                )
            })
            .collect();
        want.push((
            want.len() as i64 + 1,
            vec!["q,1".into(), "two\nlines".into()],
        ));
        let (_, feed, _) = open_csv(&good, Encoding::Utf8, u64::MAX).unwrap();
        assert_eq!(records_of(feed), (want.clone(), Ok(())));
        let (_, feed, _) = open_csv(&bad, Encoding::Utf8, u64::MAX).unwrap();
        let (records, end) = records_of(feed);
        assert_eq!(records, want, "the records before it");
        assert_eq!(
            end,
            Err(format!(
                "invalid UTF-8 in field 2 of record {}",
                CHUNK_RECORDS * 2 + 5
            ))
        );
        let (_, feed, _) = open_csv(&too_long, Encoding::Utf8, u64::MAX).unwrap();
        let (records, end) = records_of(feed);
        assert_eq!(records.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2]);
        assert!(end.unwrap_err().starts_with("record 3 is"));
    }

    #[test]
    fn records_read_on_the_spot_come_in_chunks_like_a_reader_threads_then_the_end() {
        let records = |text: &str| {
            let input = std::io::Cursor::new(text.as_bytes().to_vec());
            CsvRecords::new(CsvSplitter::new(Box::new(input)))
        };
        // Records of 300 KiB: four to a chunk, as a reader thread sends them.
        let long = "长".repeat(100 * 1024);
        let mut csv = records(&format!("{long}\n").repeat(5));
        let mut chunk = Chunk::default();
        csv.fill(&mut chunk);
        assert_eq!((chunk.len(), &csv.end), (4, &None));
        chunk.clear();
        csv.fill(&mut chunk);
        assert_eq!((chunk.len(), chunk.record(0).0), (1, 5));
        assert_eq!(csv.end, Some(Ok(())));
        // Exactly a chunk of records, the last without a line break: the end comes with an
        // empty chunk after the full one.
        let text: Vec<String> = (1..=CHUNK_RECORDS).map(|i| i.to_string()).collect();
        let mut csv = records(&text.join("\n"));
        let mut chunk = Chunk::default();
        csv.fill(&mut chunk);
        assert_eq!(chunk.len(), CHUNK_RECORDS);
        let (position, fields) = chunk.record(CHUNK_RECORDS - 1);
        assert_eq!(
            (position, fields.iter().collect::<Vec<_>>()),
            (1024, vec!["1024"])
        );
        assert_eq!(csv.end, None);
        chunk.clear();
        csv.fill(&mut chunk);
        assert_eq!((chunk.len(), csv.end.clone()), (0, Some(Ok(()))));
        // A header alone: no record, the end; asking again after it is an error.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("header.csv");
        std::fs::write(&path, "a,b\n").unwrap();
        let (_, mut feed, headers) = open_csv(&path, Encoding::Utf8, u64::MAX).unwrap();
        assert_eq!(headers, ["a", "b"]);
        assert!(matches!(feed.next(), Ok(None)));
        assert!(feed.next().is_err());
    }

    /// Hands out its CSV text, then panics at its end, as a splitter with a bug would.
    struct PanicsAtTheEnd(std::io::Cursor<Vec<u8>>);

    impl Read for PanicsAtTheEnd {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.read(buf)? {
                0 => panic!("the splitter panicked (as this test wants)"),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn a_panic_reading_on_the_spot_fails_the_file_not_the_command() {
        let text = "1\n".repeat(CHUNK_RECORDS + 10);
        let input = PanicsAtTheEnd(std::io::Cursor::new(text.into_bytes()));
        let feed = Feed {
            supply: Supply::Here(Box::new(CsvRecords::new(CsvSplitter::new(Box::new(input))))),
            current: Chunk::default(),
            next: 0,
        };
        let (records, end) = records_of(feed);
        assert_eq!(records.len(), CHUNK_RECORDS, "the full chunk before it");
        assert_eq!(
            end,
            Err("the reader of the file stopped before its end".into())
        );
    }

    #[test]
    fn a_chunk_is_sent_when_its_text_is_full_and_a_record_too_long_fails_the_file() {
        // Records of 300 KiB: four to a chunk, far fewer than CHUNK_RECORDS.
        let long = "长".repeat(100 * 1024);
        let (tx, rx) = sync_channel(QUEUE_CHUNKS);
        let (_spare, spares) = channel::<Chunk>();
        let mut sink = Sink {
            tx,
            spares,
            chunk: Chunk::default(),
            done: false,
        };
        for i in 1..=5 {
            sink.chunk().push_line(&long);
            assert!(sink.push(i));
        }
        let Ok(Msg::Records(chunk)) = rx.try_recv() else {
            panic!("a chunk was sent")
        };
        assert_eq!(chunk.len(), 4);
        let (position, fields) = chunk.record(3);
        assert_eq!(
            (position, fields.iter().collect::<Vec<_>>()),
            (4, vec![&long[..]])
        );
        assert!(rx.try_recv().is_err(), "the fifth record waits");
        // A record longer than a record may be fails the file after the records before it.
        let longest = "x".repeat(MAX_RECORD);
        sink.chunk().push_line(&longest);
        assert!(sink.push(6), "the longest record is a record");
        sink.chunk().push_field(&longest);
        sink.chunk().push_field("");
        assert!(!sink.push(7));
        drop(sink);
        let (mut got, mut failed) = (Vec::new(), None);
        for msg in rx.iter() {
            match msg {
                Msg::Records(chunk) => got.extend((0..chunk.len()).map(|i| chunk.record(i).0)),
                Msg::Failed(message) => failed = Some(message),
                Msg::End => panic!("the end of a file that failed"),
            }
        }
        assert_eq!(got, [5, 6], "the records before it");
        let want = format!(
            "record 7 is {} bytes long, more than a record may be",
            MAX_RECORD + 1
        );
        assert!(
            failed.as_ref().is_some_and(|e| e.starts_with(&want)),
            "{failed:?}"
        );
    }
}
