use crate::args::{Global, VerifyArgs};
use crate::error::CliError;
use crate::settings;
use anyhow::Context;
use logfile::verify::{verify, Severity};
use std::io::Write;
use std::process::ExitCode;

pub fn run(global: &Global, _args: VerifyArgs) -> Result<ExitCode, CliError> {
    let config = settings::load_config(global)?;
    let logs = settings::existing_logs_dir(global, &config)?;
    let report = verify(&logs).with_context(|| format!("cannot read {}", logs.display()))?;
    let mut out = std::io::stdout().lock();
    for p in &report.problems {
        writeln!(out, "{p}")?;
    }
    let (errors, warnings) = (report.count(Severity::Error), report.count(Severity::Warning));
    writeln!(
        out,
        "{}: {} files, {} lines, {} readings: {}",
        logs.display(),
        report.files,
        report.lines,
        report.readings,
        if report.is_ok() { "ok".to_string() } else { format!("{errors} errors, {warnings} warnings") }
    )?;
    Ok(if report.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
