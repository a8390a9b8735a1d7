use crate::args::{CaptureArgs, Global};
use crate::error::{CliError, SetupExt};
use crate::settings;
use anyhow::Context;
use capture::{CaptureError, Stop};
use logfile::{OffsetClock, WriteError};
use std::process::ExitCode;

pub fn run(global: &Global, args: CaptureArgs) -> Result<ExitCode, CliError> {
    let config = settings::load_config(global)?;
    let opts = settings::capture_options(global, &args, &config)?;
    let stop = Stop::new().context("cannot create the stop pipe").setup()?;
    stop.on_signals().context("cannot install signal handlers").setup()?;
    let logs = opts.logs.clone();
    match capture::run(opts, OffsetClock::from_env(), stop, None) {
        Ok(summary) => {
            tracing::info!(readings = summary.readings, lines = summary.writer.lines, "capture stopped");
            Ok(ExitCode::SUCCESS)
        }
        Err(CaptureError::Write(e @ (WriteError::Lock(_) | WriteError::Io { .. }))) => {
            Err(anyhow::Error::new(e).context(format!("cannot capture into {}", logs.display()))).setup()
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("capture into {} failed", logs.display())).into()),
    }
}
