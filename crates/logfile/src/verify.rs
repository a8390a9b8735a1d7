//! Checks a log directory: the header chain between days, the syntax of every
//! line, torn lines and timestamp order. Reading only.

use crate::layout::{self, DayFile};
use crate::reader::DayReader;
use crate::record::{parse_line, Line};
use crate::time::TimeOfDay;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding, with the file and line it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub line: Option<u64>,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}: {}", self.severity, self.message)
    }
}

/// Everything [`verify`] found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub files: usize,
    pub lines: u64,
    pub readings: u64,
    pub problems: Vec<Problem>,
}

impl Report {
    /// True when nothing is an error or a warning.
    pub fn is_ok(&self) -> bool {
        self.problems.iter().all(|p| p.severity == Severity::Note)
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.problems.iter().filter(|p| p.severity == severity).count()
    }
}

/// At most this many line-level problems are listed per file; the rest are counted.
const MAX_LINE_PROBLEMS: usize = 20;

/// Verifies every daily file under `root`.
pub fn verify(root: &Path) -> io::Result<Report> {
    let scan = layout::scan(root)?;
    let mut report = Report { files: scan.days.len(), ..Report::default() };
    for dup in &scan.duplicates {
        report.problems.push(Problem {
            path: dup.path.clone(),
            line: None,
            severity: Severity::Error,
            message: format!("a second file for {}; readers use only the first one found", dup.date),
        });
    }
    let mut sizes: Vec<u64> = Vec::with_capacity(scan.days.len());
    let mut chainless = Vec::new();
    for (i, day) in scan.days.iter().enumerate() {
        let last = i + 1 == scan.days.len();
        let (size, header) = check_file(day, last, &mut report)?;
        sizes.push(size);
        match header {
            None if i > 0 => chainless.push(day.path.clone()),
            None => {}
            Some((name, recorded)) => check_header(&scan.days, &sizes, i, &name, recorded, &mut report),
        }
    }
    if !chainless.is_empty() {
        let all = chainless.len() + 1 == scan.days.len();
        let message = if all {
            "no file has a `previous` header: an archive written before blackbox (JeeMon, HouseMon); the chain cannot be checked; each file's lines were".to_string()
        } else {
            format!(
                "{} files have no `previous` header (written before blackbox or by another tool); the chain cannot be checked across them",
                chainless.len()
            )
        };
        report.problems.push(Problem { path: chainless[0].clone(), line: None, severity: Severity::Note, message });
    }
    Ok(report)
}

/// Checks the lines of one file; returns its (uncompressed) size and its header.
fn check_file(day: &DayFile, last: bool, report: &mut Report) -> io::Result<(u64, Option<(String, u64)>)> {
    let mut reader = match DayReader::open(day) {
        Ok(r) => r,
        Err(e) => {
            report.problems.push(Problem {
                path: day.path.clone(),
                line: None,
                severity: Severity::Error,
                message: format!("cannot read: {e}"),
            });
            return Ok((0, None));
        }
    };
    let mut header = None;
    let mut previous_time: Option<TimeOfDay> = None;
    let mut listed = 0usize;
    let mut unlisted = 0usize;
    let mut problem = |report: &mut Report, line, message: String| {
        if listed < MAX_LINE_PROBLEMS {
            listed += 1;
            report.problems.push(Problem { path: day.path.clone(), line: Some(line), severity: Severity::Error, message });
        } else {
            unlisted += 1;
        }
    };
    loop {
        let raw = match reader.next_line() {
            Ok(Some(raw)) => raw,
            Ok(None) => break,
            Err(e) => {
                let line = reader.line_no() + 1;
                problem(report, line, format!("cannot read further: {e}"));
                break;
            }
        };
        report.lines += 1;
        let line_no = raw.line_no;
        let Ok(text) = std::str::from_utf8(raw.bytes) else {
            problem(report, line_no, "not valid UTF-8 (capture always escapes such bytes)".into());
            continue;
        };
        match parse_line(text) {
            Ok(line) => {
                if let Line::Reading { .. } = line {
                    report.readings += 1;
                }
                if let Line::Meta { event: "previous", args, .. } = line {
                    if line_no == 1 {
                        header = args.word(0).zip(args.word(1).and_then(|s| s.parse().ok())).map(|(n, s)| (n.to_string(), s));
                        if header.is_none() {
                            problem(report, line_no, format!("malformed header {text:?}, expected `# HH:MM:SS.mmm previous NAME SIZE`"));
                        }
                    } else {
                        problem(report, line_no, "a `previous` header that is not the first line".into());
                    }
                }
                let time = line.time();
                if let Some(prev) = previous_time.filter(|&p| time < p) {
                    problem(report, line_no, format!("time goes back from {prev} to {time}"));
                }
                previous_time = Some(previous_time.map_or(time, |p| p.max(time)));
            }
            Err(e) => problem(report, line_no, format!("{e}: {:?}", truncate(text, 60))),
        }
    }
    if unlisted > 0 {
        report.problems.push(Problem {
            path: day.path.clone(),
            line: None,
            severity: Severity::Error,
            message: format!("{unlisted} more problems in this file not listed"),
        });
    }
    let partial = reader.partial_len();
    if partial > 0 {
        let (severity, message) = if last && !day.compressed {
            (
                Severity::Warning,
                format!("unfinished last line ({partial} bytes): capture may be writing it, or was cut off and repairs it when it starts"),
            )
        } else {
            (Severity::Error, format!("torn last line ({partial} bytes) in a closed day"))
        };
        report.problems.push(Problem { path: day.path.clone(), line: Some(reader.line_no() + 1), severity, message });
    }
    Ok((reader.offset() + partial as u64, header))
}

fn check_header(days: &[DayFile], sizes: &[u64], i: usize, name: &str, recorded: u64, report: &mut Report) {
    let day = &days[i];
    let mut push = |severity, message| report.problems.push(Problem { path: day.path.clone(), line: Some(1), severity, message });
    let named = days[..i].iter().position(|d| d.name() == name || d.name() == format!("{name}.gz"));
    match named {
        Some(j) if j + 1 == i => {
            if sizes[j] != recorded {
                let change = if sizes[j] < recorded { "truncated" } else { "changed (it grew)" };
                push(
                    Severity::Error,
                    format!(
                        "{} is {} bytes but was {recorded} when this day began: it was {change} after it was closed",
                        days[j].name(),
                        sizes[j]
                    ),
                );
            }
        }
        Some(j) => push(
            Severity::Error,
            format!(
                "the header names {name}, but {} lies between them: a file was added to the history",
                days[j + 1..i].iter().map(DayFile::name).collect::<Vec<_>>().join(", ")
            ),
        ),
        None if i == 0 => push(
            Severity::Note,
            format!("the chain starts here; the previous file {name} is not in this directory (removed by retention?)"),
        ),
        None => push(Severity::Error, format!("the previous file {name} ({recorded} bytes) is missing")),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n).chain("…".chars()).collect()
    }
}
