//! The blackbox log format: the daily files that are the product's only
//! source of truth, and everything that reads or writes them.
//!
//! - [`escape`]: reversible escaping of device bytes into one UTF-8 line;
//! - [`framer`]: cutting a byte stream into lines, whatever the terminators;
//! - [`record`]: formatting and parsing `L` and `#` lines;
//! - [`layout`]: where daily files live, in both layouts, plain or gzipped;
//! - [`reader`]: complete lines from any offset, never a torn last line;
//! - [`writer`]: the only writer, with the header chain, clock rules,
//!   durability policy and torn-tail repair;
//! - [`verify`]: checking a log directory.
//!
//! Architecture invariant: nothing here knows about devices or decoding.

pub mod clock;
pub mod escape;
pub mod framer;
pub mod layout;
pub mod lock;
pub mod reader;
pub mod record;
pub mod storage;
pub mod tail;
pub mod time;
pub mod verify;
pub mod writer;

pub use clock::{Clock, ManualClock, OffsetClock, Stamp, SystemClock};
pub use escape::{escape, escape_into, unescape};
pub use framer::{Frame, Framer, DEFAULT_MAX_LINE};
pub use layout::{scan, DayFile, Scan};
pub use reader::{DayReader, RawLine};
pub use record::{parse_line, Line, LineError, MetaArgs, MetaBuilder};
pub use storage::{RealStorage, Storage, StorageFile};
pub use time::TimeOfDay;
pub use writer::{LogWriter, SyncPolicy, WriteError, WriterOptions, WriterStats};

/// The raw texts of some lines (in increasing order) of a day file
/// (`YYYYMMDD`), each if it can be read; `days` is the log directory's scan.
pub fn day_lines(days: &[DayFile], day: &str, lines: &[u64]) -> Vec<Option<String>> {
    let mut out = vec![None; lines.len()];
    let Ok(date) = chrono::NaiveDate::parse_from_str(day, "%Y%m%d") else { return out };
    // Wherever the day file is (YYYY/ or flat, plain or gzipped), as the indexer found it.
    let Some(file) = days.iter().find(|d| d.date == date) else { return out };
    let Ok(mut r) = DayReader::open(file) else { return out };
    let mut want = lines.iter().enumerate().peekable();
    while let (Some(&(i, &line)), Ok(Some(l))) = (want.peek(), r.next_line()) {
        if l.line_no == line {
            out[i] = Some(String::from_utf8_lossy(l.bytes).into_owned());
            want.next();
        }
    }
    out
}
