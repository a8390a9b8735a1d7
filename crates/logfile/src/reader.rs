//! Reads complete lines from a daily file, plain or gzip-compressed, from
//! any byte offset. An unfinished last line (being written, or torn by a
//! power cut) is never returned; the reader can try again later.

use crate::layout::DayFile;
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

enum Source {
    Plain(File),
    Gz(Box<MultiGzDecoder<File>>),
}

impl Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let r = match self {
                Source::Plain(f) => f.read(buf),
                Source::Gz(g) => g.read(buf),
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
}

/// How much is read at a time: lines are found in the buffer in place.
const CHUNK: usize = 64 * 1024;

/// A reader of complete lines. Offsets are byte offsets in the
/// uncompressed text.
pub struct DayReader {
    source: Source,
    offset: u64,
    line_no: u64,
    /// Bytes read and not yet returned are `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    partial: usize,
}

impl std::fmt::Debug for DayReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DayReader").field("offset", &self.offset).field("line_no", &self.line_no).finish()
    }
}

/// One complete line.
#[derive(Debug, Clone, Copy)]
pub struct RawLine<'a> {
    /// Byte offset of the start of the line.
    pub offset: u64,
    /// 1-based line number.
    pub line_no: u64,
    /// The line without its `\n` (and without a `\r` before it).
    pub bytes: &'a [u8],
    /// The line as it is in the file, terminator included.
    pub raw: &'a [u8],
}

impl DayReader {
    /// Opens `day` at the start.
    pub fn open(day: &DayFile) -> io::Result<Self> {
        Self::open_at(&day.path, day.compressed, 0, 0)
    }

    /// Opens `path` at byte `offset`, which must be the start of a line;
    /// `lines_before` is the number of lines before it (for line numbers).
    pub fn open_at(path: &Path, compressed: bool, offset: u64, lines_before: u64) -> io::Result<Self> {
        let mut file = File::open(path)?;
        let source = if compressed {
            let mut gz = MultiGzDecoder::new(file);
            let skipped = io::copy(&mut Read::take(&mut gz, offset), &mut io::sink())?;
            if skipped < offset {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "offset past the end of the file"));
            }
            Source::Gz(Box::new(gz))
        } else {
            file.seek(SeekFrom::Start(offset))?;
            Source::Plain(file)
        };
        Ok(Self { source, offset, line_no: lines_before, buf: vec![0; CHUNK], start: 0, end: 0, partial: 0 })
    }

    /// The next complete line, or `None` at the end of the complete lines.
    /// An unfinished last line of a plain file is read again by a later call.
    pub fn next_line(&mut self) -> io::Result<Option<RawLine<'_>>> {
        let n = loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                break i + 1;
            }
            // No whole line in the buffer: move what is left to its start, make room, read more.
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let got = self.source.read(&mut self.buf[self.end..])?;
            if got == 0 {
                self.partial = self.end - self.start;
                if let Source::Plain(f) = &mut self.source {
                    // Read it again next time: capture may cut a torn line away before it appends.
                    f.seek(SeekFrom::Start(self.offset))?;
                    (self.start, self.end) = (0, 0);
                }
                return Ok(None);
            }
            self.end += got;
        };
        self.partial = 0;
        let line = &self.buf[self.start..self.start + n];
        self.start += n;
        let start = self.offset;
        self.offset += n as u64;
        self.line_no += 1;
        let mut end = n - 1;
        if end > 0 && line[end - 1] == b'\r' {
            end -= 1;
        }
        Ok(Some(RawLine { offset: start, line_no: self.line_no, bytes: &line[..end], raw: line }))
    }

    /// Offset just after the last complete line returned.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Number of complete lines returned so far (including `lines_before`).
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// Length of the unfinished last line seen by the last call, if any.
    pub fn partial_len(&self) -> usize {
        self.partial
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines(r: &mut DayReader) -> Vec<(u64, u64, String)> {
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push((l.offset, l.line_no, String::from_utf8_lossy(l.bytes).into_owned()));
        }
        out
    }

    #[test]
    fn complete_lines_only_then_resume() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("20121130.txt");
        std::fs::write(&path, "L 00:00:00.000 a x\r\nL 00:00:01.000 a y\nL 00:00:0").unwrap();
        let mut r = DayReader::open_at(&path, false, 0, 0).unwrap();
        assert_eq!(lines(&mut r), [(0, 1, "L 00:00:00.000 a x".into()), (20, 2, "L 00:00:01.000 a y".into())]);
        assert_eq!(r.partial_len(), 9);
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"2.000 a z\n").unwrap();
        assert_eq!(lines(&mut r), [(39, 3, "L 00:00:02.000 a z".into())]);
        assert_eq!(r.partial_len(), 0);
        let mut again = DayReader::open_at(&path, false, 20, 1).unwrap();
        assert_eq!(lines(&mut again).len(), 2);
    }

    /// A torn last line cut away and replaced (as capture repairs it) is
    /// read as it is now, and lines longer than a read are whole.
    #[test]
    fn a_replaced_torn_line_and_long_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("20121130.txt");
        std::fs::write(&path, "L 00:00:00.000 a x\nL 00:00:0").unwrap();
        let mut r = DayReader::open_at(&path, false, 0, 0).unwrap();
        assert_eq!(lines(&mut r).len(), 1);
        assert_eq!(r.partial_len(), 9);
        let long = "y".repeat(3 * CHUNK);
        std::fs::write(&path, format!("L 00:00:00.000 a x\n# 00:00:01.000 torn\nL 00:00:02.000 a {long}\n")).unwrap();
        let got = lines(&mut r);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (19, 2, "# 00:00:01.000 torn".into()));
        assert_eq!(got[1].2.len(), 17 + long.len());
        assert_eq!(r.offset(), std::fs::metadata(&path).unwrap().len());
    }

    #[test]
    fn gzip_days_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("20121130.txt.gz");
        let mut gz = flate2::write::GzEncoder::new(File::create(&path).unwrap(), flate2::Compression::fast());
        gz.write_all(b"L 00:00:00.000 a x\nL 00:00:01.000 a y\n").unwrap();
        gz.finish().unwrap();
        let mut r = DayReader::open_at(&path, true, 19, 1).unwrap();
        assert_eq!(lines(&mut r), [(19, 2, "L 00:00:01.000 a y".into())]);
        assert!(DayReader::open_at(&path, true, 100, 0).is_err());
    }
}
