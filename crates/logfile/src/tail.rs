//! What `blackbox tail` needs: the last lines of a log directory across day
//! boundaries, and a follower that returns new complete lines as they are
//! appended, moving on to the next day's file when it appears (by name, like
//! `tail -F`). Reading only; the waiting is the caller's.

use crate::layout::{self, DayFile};
use crate::reader::DayReader;
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};

/// A line of a daily file, without its terminator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailLine {
    pub day: chrono::NaiveDate,
    pub text: String,
}

/// The last `n` lines accepted by `keep`, oldest first, reading back through
/// as many days as needed, and the position just after them (for following).
pub fn last_lines(root: &Path, n: usize, keep: &dyn Fn(&str) -> bool) -> io::Result<(Vec<TailLine>, Follower)> {
    let scan = layout::scan(root)?;
    let mut found: VecDeque<TailLine> = VecDeque::new();
    let mut follower = Follower { root: root.to_path_buf(), day: None, offset: 0 };
    // Only the position (`tail -f -n 0`, the demo's view): no need to read the day.
    if n == 0 {
        if let Some(day) = scan.days.last().filter(|d| !d.compressed) {
            follower.offset = end_of_last_line(&day.path)?;
            follower.day = Some(day.clone());
            return Ok((Vec::new(), follower));
        }
    }
    for (i, day) in scan.days.iter().enumerate().rev() {
        let mut reader = DayReader::open(day)?;
        let mut lines = Vec::new();
        while let Some(line) = reader.next_line()? {
            let text = String::from_utf8_lossy(line.bytes).into_owned();
            if keep(&text) {
                lines.push(TailLine { day: day.date, text });
            }
        }
        if i + 1 == scan.days.len() {
            follower.day = Some(day.clone());
            follower.offset = reader.offset();
        }
        for l in lines.into_iter().rev() {
            if found.len() == n {
                break;
            }
            found.push_front(l);
        }
        if found.len() == n {
            break;
        }
    }
    Ok((found.into(), follower))
}

/// The offset just after the last `\n` of a file (0 if it has none): where
/// a reader that never returns a partial line would stop. Reads backwards.
fn end_of_last_line(path: &Path) -> io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let mut end = f.metadata()?.len();
    let mut buf = vec![0u8; 8192];
    while end > 0 {
        let n = buf.len().min(end as usize);
        let start = end - n as u64;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Every line accepted by `keep` from epoch millisecond `since` on (a line
/// without a readable time counts as later than anything before it), and
/// the position after the last line (for following).
pub fn lines_since(root: &Path, since_ms: i64, keep: &dyn Fn(&str) -> bool) -> io::Result<(Vec<TailLine>, Follower)> {
    let scan = layout::scan(root)?;
    let (since_day, _) = crate::time::split_millis(since_ms);
    let mut out = Vec::new();
    let mut follower = Follower { root: root.to_path_buf(), day: None, offset: 0 };
    for day in scan.days.iter().filter(|d| d.date >= since_day) {
        let mut reader = DayReader::open(day)?;
        let mut started = day.date > since_day;
        while let Some(line) = reader.next_line()? {
            let text = String::from_utf8_lossy(line.bytes).into_owned();
            if !started {
                // Times never decrease within a file, so once one line is late enough, all later ones are.
                match crate::record::parse_line(&text) {
                    Ok(l) if crate::time::join_millis(day.date, l.time()) < since_ms => continue,
                    _ => started = true,
                }
            }
            if keep(&text) {
                out.push(TailLine { day: day.date, text });
            }
        }
        follower.day = Some(day.clone());
        follower.offset = reader.offset();
    }
    if follower.day.is_none() {
        // Nothing since then: follow from the end of the latest day.
        if let Some(last) = scan.days.last() {
            let mut reader = DayReader::open(last)?;
            while reader.next_line()?.is_some() {}
            follower.day = Some(last.clone());
            follower.offset = reader.offset();
        }
    }
    Ok((out, follower))
}

/// Follows a log directory from a position.
#[derive(Clone, Debug)]
pub struct Follower {
    root: PathBuf,
    day: Option<DayFile>,
    offset: u64,
}

impl Follower {
    /// Calls `f` with every complete line appended since the last call, in
    /// order, across new daily files. A file that shrank below the position
    /// (rewritten) is read again from its start.
    pub fn poll(&mut self, f: &mut dyn FnMut(TailLine) -> io::Result<()>) -> io::Result<()> {
        loop {
            if let Some(day) = self.day.clone() {
                let len = std::fs::metadata(&day.path).map(|m| m.len()).unwrap_or(0);
                if !day.compressed && len < self.offset {
                    self.offset = 0;
                }
                let mut reader = match DayReader::open_at(&day.path, day.compressed, self.offset, 0) {
                    Ok(r) => r,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        self.day = None;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                while let Some(line) = reader.next_line()? {
                    f(TailLine { day: day.date, text: String::from_utf8_lossy(line.bytes).into_owned() })?;
                }
                self.offset = reader.offset();
            }
            // Move on to the next day's file, if one exists.
            let scan = layout::scan(&self.root)?;
            let next = scan.days.into_iter().find(|d| self.day.as_ref().is_none_or(|cur| d.date > cur.date));
            match next {
                Some(d) => {
                    self.day = Some(d);
                    self.offset = 0;
                }
                None => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(root: &Path, day: &str, text: &str) {
        let p = root.join(&day[..4]).join(format!("{day}.txt"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::OpenOptions::new().create(true).append(true).open(p).unwrap().write_all(text.as_bytes()).unwrap();
    }

    fn texts(v: &[TailLine]) -> Vec<&str> {
        v.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn lines_since_a_time_cross_days() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "20261120", "L 22:00:00.000 a one\nL 23:00:00.000 a two\n");
        write(root, "20261121", "L 00:00:01.000 a three\n");
        let t = |s: &str| crate::time::parse_time(s, None).unwrap();
        let (got, mut f) = lines_since(root, t("2026-11-20 22:30"), &|_| true).unwrap();
        assert_eq!(texts(&got), ["L 23:00:00.000 a two", "L 00:00:01.000 a three"]);
        let (none, _) = lines_since(root, t("2026-11-22"), &|_| true).unwrap();
        assert!(none.is_empty());
        write(root, "20261121", "L 00:00:02.000 a four\n");
        let mut more = Vec::new();
        f.poll(&mut |l| {
            more.push(l.text);
            Ok(())
        })
        .unwrap();
        assert_eq!(more, ["L 00:00:02.000 a four"]);
    }

    #[test]
    fn last_lines_cross_days_and_following_moves_to_new_days() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "20261120", "L 23:00:00.000 a one\nL 23:00:01.000 b two\n");
        write(root, "20261121", "L 00:00:01.000 a three\nL 00:00:02.000 a four\nL 00:00:0");
        let (last, mut f) = last_lines(root, 3, &|_| true).unwrap();
        assert_eq!(texts(&last), ["L 23:00:01.000 b two", "L 00:00:01.000 a three", "L 00:00:02.000 a four"]);
        let (only_a, _) = last_lines(root, 10, &|l| l.contains(" a ")).unwrap();
        assert_eq!(only_a.len(), 3);
        let mut got = Vec::new();
        f.poll(&mut |l| {
            got.push(l.text);
            Ok(())
        })
        .unwrap();
        assert!(got.is_empty(), "the unfinished line must not be returned");
        write(root, "20261121", "3.000 a five\n");
        write(root, "20261122", "# 00:00:00.001 previous 20261121.txt 99\nL 00:00:00.001 a six\n");
        f.poll(&mut |l| {
            got.push(l.text);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, ["L 00:00:03.000 a five", "# 00:00:00.001 previous 20261121.txt 99", "L 00:00:00.001 a six"]);
    }

    #[test]
    fn no_lines_starts_following_after_the_last_complete_line() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Longer than one backwards read, ending in a partial line.
        let long: String = (0..2000).map(|i| format!("L 00:00:{:02}.000 a line {i}\n", i % 60)).collect();
        write(root, "20261121", &format!("{long}L 00:01:00.000 a par"));
        let (none, mut f) = last_lines(root, 0, &|_| true).unwrap();
        assert!(none.is_empty());
        write(root, "20261121", "tial\nL 00:01:01.000 a next\n");
        let mut got = Vec::new();
        f.poll(&mut |l| {
            got.push(l.text);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, ["L 00:01:00.000 a partial", "L 00:01:01.000 a next"]);
        assert_eq!(
            end_of_last_line(&root.join("2026/20261121.txt")).unwrap(),
            std::fs::metadata(root.join("2026/20261121.txt")).unwrap().len()
        );
        write(root, "20261122", "no newline at all");
        assert_eq!(end_of_last_line(&root.join("2026/20261122.txt")).unwrap(), 0);
    }
}
