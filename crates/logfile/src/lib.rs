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
    let Some(file) = layout::day_file(days, day) else { return out };
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

/// The texts of lines given as (day `YYYYMMDD`, line number), in log order
/// (a device's last lines, which may reach over days): each with the name
/// of its day's file (`.txt.gz` for a gzipped day, [`layout::shown_name`])
/// and its number; each day's file is read once.
pub fn lines_at(days: &[DayFile], at: &[(String, u64)]) -> Vec<(String, u64, Option<String>)> {
    let mut out = Vec::with_capacity(at.len());
    for run in at.chunk_by(|a, b| a.0 == b.0) {
        let day = &run[0].0;
        let file = layout::shown_name(days, day);
        let numbers: Vec<u64> = run.iter().map(|(_, l)| *l).collect();
        out.extend(numbers.iter().zip(day_lines(days, day, &numbers)).map(|(&n, text)| (file.clone(), n, text)));
    }
    out
}

/// The name of a day's file and some of its lines, each with its number.
pub type Span = (String, Vec<(u64, String)>);

/// Lines `first..=last` (1-based) of the day `day`, with their numbers and
/// raw texts, and the name of the file they are in; `None` when `day` is
/// not eight digits of a date or the log directory (`days`, its scan) has
/// no file for it. The file is only ever one the scan found, so a caller's
/// `day` never chooses a path.
pub fn day_span(days: &[DayFile], day: &str, first: u64, last: u64) -> std::io::Result<Option<Span>> {
    let Some(file) = layout::day_file(days, day) else { return Ok(None) };
    let mut r = DayReader::open(file)?;
    let mut out = Vec::new();
    while let Some(l) = r.next_line()? {
        if l.line_no > last {
            break;
        }
        if l.line_no >= first {
            out.push((l.line_no, String::from_utf8_lossy(l.bytes).into_owned()));
        }
    }
    Ok(Some((file.name(), out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_span_of_a_day_plain_or_gzipped() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (1..=10).map(|i| format!("L 00:00:{i:02}.000 s line {i}\n")).collect();
        std::fs::create_dir_all(dir.path().join("2012")).unwrap();
        std::fs::write(dir.path().join("2012/20121130.txt"), &text).unwrap();
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(text.as_bytes()).unwrap();
        std::fs::write(dir.path().join("20121201.txt.gz"), z.finish().unwrap()).unwrap();
        let days = scan(dir.path()).unwrap().days;
        for (day, name) in [("20121130", "20121130.txt"), ("20121201", "20121201.txt.gz")] {
            let (file, lines) = day_span(&days, day, 4, 6).unwrap().unwrap();
            assert_eq!(file, name);
            assert_eq!(
                lines,
                vec![(4, "L 00:00:04.000 s line 4".into()), (5, "L 00:00:05.000 s line 5".into()), (6, "L 00:00:06.000 s line 6".into())]
            );
            // Past the end: only what there is.
            assert_eq!(day_span(&days, day, 9, 20).unwrap().unwrap().1.len(), 2);
            assert!(day_span(&days, day, 11, 20).unwrap().unwrap().1.is_empty());
        }
        // Lines over two days, named by their files, each read once.
        let at = [("20121130".to_string(), 9), ("20121130".to_string(), 10), ("20121201".to_string(), 1), ("20121202".to_string(), 1)];
        let got = lines_at(&days, &at);
        assert_eq!(
            got,
            [
                ("20121130.txt".into(), 9, Some("L 00:00:09.000 s line 9".into())),
                ("20121130.txt".into(), 10, Some("L 00:00:10.000 s line 10".into())),
                ("20121201.txt.gz".into(), 1, Some("L 00:00:01.000 s line 1".into())),
                ("20121202.txt".into(), 1, None),
            ]
        );
        // Only eight digits of a day the scan found.
        for day in ["20121202", "2012113", "+2012113", "2012-11-30", "../20121130", "20121130.txt", "2012113a", "20121340"] {
            assert!(day_span(&days, day, 1, 1).unwrap().is_none(), "{day}");
        }
    }
}
