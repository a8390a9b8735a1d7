//! `blackbox demo`: a simulated RF12demo receiver on a pseudo-terminal,
//! captured through the real serial code path.

use crate::args::{DemoArgs, Global};
use crate::error::{setup_error, CliError, SetupExt};
use crate::settings;
use anyhow::Context;
use capture::{Backoff, CaptureOptions, SourceKind, SourceSpec, Stop};
use logfile::{SystemClock, WriterOptions};
use serialport::SerialPort;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The source name of the simulated receiver.
pub const DEMO_SOURCE: &str = "usb-DEMO";

pub fn run(global: &Global, args: DemoArgs) -> Result<ExitCode, CliError> {
    if !(args.rate > 0.0 && args.rate <= 10_000.0) {
        return Err(setup_error("--rate must be between 0 and 10000 packets per second"));
    }
    let config = settings::load_config(global)?;
    let logs = settings::logs_dir(global, &config);
    let (mut device, port) = serialport::TTYPort::pair().context("cannot create a pseudo-terminal for the simulated receiver").setup()?;
    let path = port.name().context("the pseudo-terminal has no name").setup()?;
    let stop = Stop::new().context("cannot create the stop pipe").setup()?;
    stop.on_signals().context("cannot install signal handlers").setup()?;

    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let sim_stop = stop.clone();
    let seed = args.seed;
    let simulator = std::thread::Builder::new()
        .name("simulated rf12demo".into())
        .spawn(move || {
            let mut sim = sim::Rf12Demo::new(seed);
            let mut line = format!("{}\r\n", sim::BANNER);
            loop {
                if device.write_all(line.as_bytes()).is_err() {
                    break;
                }
                // Pacing, not synchronisation: a real receiver sends packets as they come in.
                if sim_stop.wait(interval) {
                    break;
                }
                line = format!("{}\r\n", sim.next_line());
            }
            // Keep the pseudo-terminal open until capture has closed its end.
            drop(device);
        })
        .context("cannot start the simulator")
        .setup()?;

    eprintln!("blackbox demo: a simulated RF12demo receiver on {path}, captured into {} (Ctrl-C to stop)", logs.display());
    let out_stop = stop.clone();
    let sink = Box::new(move |lines: &str| {
        let mut out = std::io::stdout().lock();
        if out.write_all(lines.as_bytes()).and_then(|_| out.flush()).is_err() {
            // The viewer went away (`| head`): stop quietly.
            out_stop.trigger();
        }
    });
    let mut spec = SourceSpec::new(
        DEMO_SOURCE,
        SourceKind::Serial { path: path.clone().into(), baud: settings::DEFAULT_BAUD, framing: Default::default() },
    );
    spec.max_line = logfile::DEFAULT_MAX_LINE;
    let opts = CaptureOptions { logs: logs.clone(), writer: WriterOptions::default(), sources: vec![spec], backoff: Backoff::default() };
    let result = capture::run(opts, Arc::new(SystemClock::new()), stop.clone(), Some(sink));
    stop.trigger();
    let _ = simulator.join();
    drop(port);
    let summary = result.map_err(anyhow::Error::new).with_context(|| format!("capture into {} failed", logs.display()))?;
    // Name the program as it was invoked, so the hints can be pasted as they are.
    let me = std::env::args().next().filter(|a| a.contains('/')).unwrap_or_else(|| "blackbox".into());
    let logs = logs.display();
    eprintln!(
        "\nblackbox demo: stopped; {} readings captured this run into {logs}.\nTry next:\n  {me} verify --logs {logs}\n  tail {logs}/*/*.txt\n  {me} demo            # continues the same logs",
        summary.readings,
    );
    Ok(ExitCode::SUCCESS)
}
