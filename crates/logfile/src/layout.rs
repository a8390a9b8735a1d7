//! Where daily files live: `<logs>/YYYY/YYYYMMDD.txt`, and for reading also
//! JeeMon's flat `<logs>/YYYYMMDD.txt` and gzip-compressed `.txt.gz` days.

use chrono::{Datelike, NaiveDate};
use std::io;
use std::path::{Path, PathBuf};

/// One daily file found in a log directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayFile {
    pub date: NaiveDate,
    pub path: PathBuf,
    pub compressed: bool,
}

impl DayFile {
    /// The file name (`20121130.txt` or `20121130.txt.gz`).
    pub fn name(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
}

/// The result of scanning a log directory.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    /// One file per day, oldest first.
    pub days: Vec<DayFile>,
    /// Files for a day that already had one; `days` holds the preferred copy
    /// (nested before flat, plain before compressed).
    pub duplicates: Vec<DayFile>,
}

/// `YYYYMMDD.txt` for `date`.
pub fn file_name(date: NaiveDate) -> String {
    format!("{:04}{:02}{:02}.txt", date.year(), date.month(), date.day())
}

/// The name of the file of day `day` (`YYYYMMDD`) among `days` (a scan of
/// the logs): `20121130.txt.gz` for a gzipped day, so that what is shown
/// can be found; `YYYYMMDD.txt` when the scan has no file for it.
pub fn shown_name(days: &[DayFile], day: &str) -> String {
    day_file(days, day).map(DayFile::name).unwrap_or_else(|| format!("{day}.txt"))
}

/// The file of day `day` among `days` (a scan of the logs), wherever it is
/// (`YYYY/` or flat, plain or gzipped); `None` when `day` is not eight
/// digits of a date or the scan has no file for it. A caller's `day` is
/// only ever compared with what the scan found: it never makes a path.
pub fn day_file<'a>(days: &'a [DayFile], day: &str) -> Option<&'a DayFile> {
    if day.len() != 8 || !day.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let date = NaiveDate::parse_from_str(day, "%Y%m%d").ok()?;
    days.iter().find(|d| d.date == date)
}

/// `<root>/YYYY/YYYYMMDD.txt`, where capture writes `date`.
pub fn day_path(root: &Path, date: NaiveDate) -> PathBuf {
    root.join(format!("{:04}", date.year())).join(file_name(date))
}

/// Recognises `YYYYMMDD.txt` and `YYYYMMDD.txt.gz`.
pub fn parse_file_name(name: &str) -> Option<(NaiveDate, bool)> {
    let (stem, compressed) = match name.strip_suffix(".txt.gz") {
        Some(stem) => (stem, true),
        None => (name.strip_suffix(".txt")?, false),
    };
    if stem.len() != 8 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| stem[r].parse::<u32>().ok();
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(4..6)?, num(6..8)?)?;
    Some((date, compressed))
}

/// Lists the daily files under `root` in date order. A missing directory is
/// an empty log, not an error.
pub fn scan(root: &Path) -> io::Result<Scan> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Scan::default()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ty = entry.file_type()?;
        if ty.is_dir() && name.len() == 4 && name.bytes().all(|b| b.is_ascii_digit()) {
            for inner in std::fs::read_dir(entry.path())? {
                let inner = inner?;
                let iname = inner.file_name().to_string_lossy().into_owned();
                if let Some((date, compressed)) = parse_file_name(&iname) {
                    if iname.starts_with(&name) && !inner.file_type()?.is_dir() {
                        found.push((0u8, DayFile { date, path: inner.path(), compressed }));
                    }
                }
            }
        } else if let Some((date, compressed)) = parse_file_name(&name) {
            if !ty.is_dir() {
                found.push((1u8, DayFile { date, path: entry.path(), compressed }));
            }
        }
    }
    // Oldest first; for one day the nested plain file wins.
    found.sort_by(|(la, a), (lb, b)| (a.date, a.compressed, la).cmp(&(b.date, b.compressed, lb)));
    let mut scan = Scan::default();
    for (_, day) in found {
        if scan.days.last().is_some_and(|d| d.date == day.date) {
            scan.duplicates.push(day);
        } else {
            scan.days.push(day);
        }
    }
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let d = NaiveDate::from_ymd_opt(2012, 11, 30).unwrap();
        assert_eq!(file_name(d), "20121130.txt");
        assert_eq!(day_path(Path::new("logs"), d), Path::new("logs/2012/20121130.txt"));
        assert_eq!(parse_file_name("20121130.txt"), Some((d, false)));
        assert_eq!(parse_file_name("20121130.txt.gz"), Some((d, true)));
        assert_eq!(parse_file_name("20121131.txt"), None);
        assert_eq!(parse_file_name("2012113.txt"), None);
        assert_eq!(parse_file_name("20121130.log"), None);
    }

    #[test]
    fn scan_reads_both_layouts_and_prefers_nested_plain() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("2012")).unwrap();
        std::fs::create_dir_all(root.join("2013")).unwrap();
        for p in [
            "20121129.txt",
            "20121130.txt.gz",
            "2012/20121130.txt",
            "2012/20121201.txt.gz",
            "2013/20130101.txt",
            "README.md",
            ".lock",
            "2013/20120101.txt",
        ] {
            std::fs::write(root.join(p), "").unwrap();
        }
        let scan = scan(root).unwrap();
        let names: Vec<String> = scan.days.iter().map(|d| d.path.strip_prefix(root).unwrap().display().to_string()).collect();
        assert_eq!(names, ["20121129.txt", "2012/20121130.txt", "2012/20121201.txt.gz", "2013/20130101.txt"]);
        assert_eq!(scan.duplicates.len(), 1);
        assert!(super::scan(&root.join("missing")).unwrap().days.is_empty());
        // The name shown for a day is its file's, gzipped or not.
        assert_eq!(shown_name(&scan.days, "20121201"), "20121201.txt.gz");
        assert_eq!(shown_name(&scan.days, "20121130"), "20121130.txt");
        assert_eq!(shown_name(&scan.days, "20121202"), "20121202.txt");
    }
}
