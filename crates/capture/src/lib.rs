//! `blackbox capture`: reads lines from devices and appends them to the log.
//!
//! One thread per source reads with `poll` (no CPU while idle, no sleeps),
//! frames lines, stamps them when their terminator arrives and sends them to
//! the single writer loop, which owns the [`logfile::LogWriter`]. A source
//! that disappears is reopened by path with bounded exponential backoff.
//!
//! Architecture invariant: capture depends on nothing but the devices and
//! the disk: not on the cache, the indexer, the network or a correct clock.

pub mod dataflash;
mod source;
mod stop;

pub use source::{default_port_name, default_tcp_name, validate_name, Framing, OpenError, Poll, SourceKind, SourceSpec};
pub use stop::{signal_name, Stop, StopCause};

use logfile::{Clock, Frame, Framer, LogWriter, MetaBuilder, RealStorage, Stamp, WriteError, WriterOptions, WriterStats};
use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use source::Connection;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bounds on the wait between attempts to reopen a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { min: Duration::from_millis(100), max: Duration::from_secs(30) }
    }
}

/// Everything `capture` needs.
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    pub logs: PathBuf,
    pub writer: WriterOptions,
    pub sources: Vec<SourceSpec>,
    pub backoff: Backoff,
}

/// What a finished capture did.
#[derive(Clone, Debug)]
pub struct Summary {
    pub readings: u64,
    pub writer: WriterStats,
    pub cause: Option<StopCause>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

/// A piece of text from a device, with why it was cut if it was.
struct Piece {
    bytes: Vec<u8>,
    cut: Option<&'static str>,
}

enum Msg {
    Lines { source: Arc<str>, at: Stamp, pieces: Vec<Piece> },
    Meta { at: Stamp, event: &'static str, args: String },
}

/// Lines written to the channel before the writer applies back-pressure;
/// each message holds the lines of one read, so memory stays bounded.
const CHANNEL_DEPTH: usize = 64;
const READ_BUFFER: usize = 32 * 1024;

/// Runs capture until every source has ended (standard input at its end) or
/// `stop` is triggered, then writes a `stop` line and syncs.
pub fn run(opts: CaptureOptions, clock: Arc<dyn Clock>, stop: Stop, sink: Option<logfile::writer::Sink>) -> Result<Summary, CaptureError> {
    let mut writer = LogWriter::open(&opts.logs, opts.writer, Box::new(RealStorage), clock.now())?;
    if let Some(sink) = sink {
        writer.set_sink(sink);
    }
    let names: Vec<&str> = opts.sources.iter().map(|s| s.name.as_str()).collect();
    let args = MetaBuilder::new()
        .kv("version", env!("CARGO_PKG_VERSION"))
        .kv("pid", std::process::id())
        .kv("sync", opts.writer.sync)
        .kv("sources", names.join(","))
        .build();
    writer.meta(clock.now(), "start", &args)?;

    let (tx, rx) = sync_channel(CHANNEL_DEPTH);
    let mut threads = Vec::new();
    for spec in opts.sources.iter().cloned() {
        let (tx, clock, stop, backoff, logs) = (tx.clone(), clock.clone(), stop.clone(), opts.backoff, opts.logs.clone());
        let handle = std::thread::Builder::new()
            .name(format!("source {}", spec.name))
            .spawn(move || {
                let flash = spec.dataflash.then(|| std::cell::RefCell::new(dataflash::progress_from_logs(&logs, &spec.name)));
                SourceTask { spec, tx, clock, stop, backoff, flash }.run()
            })
            .map_err(CaptureError::Thread)?;
        threads.push(handle);
    }
    drop(tx);

    let result = writer_loop(&mut writer, &rx, &*clock);
    if result.is_err() {
        // Unblock and end the readers; nothing more can be written.
        stop.trigger();
    }
    drop(rx);
    for t in threads {
        let _ = t.join();
    }
    let readings = result?;
    drain(&mut writer, &*clock, &stop)?;
    let cause = stop.cause();
    let reason = match cause {
        Some(StopCause::Signal(s)) => signal_name(s),
        Some(StopCause::Requested) => "requested".into(),
        None => "end-of-input".into(),
    };
    writer.meta(clock.now(), "stop", &MetaBuilder::new().kv("reason", reason).kv("readings", readings).build())?;
    let stats = writer.close()?;
    Ok(Summary { readings, writer: stats, cause })
}

/// Every source has ended (standard input at its end), but the disk was full
/// and lines are still held: keep retrying, as while the input was open,
/// until they are written. Only a stop (a signal) ends this earlier; closing
/// the writer then reports exactly what was lost.
fn drain(writer: &mut LogWriter, clock: &dyn Clock, stop: &Stop) -> Result<(), WriteError> {
    if !writer.holding() || stop.is_set() {
        return Ok(());
    }
    tracing::warn!(
        held = writer.stats().held,
        "end of input while lines are held because the log cannot be written; retrying every second until they are (SIGTERM or Ctrl-C gives up and reports what is lost)"
    );
    while writer.holding() {
        let Some(deadline) = writer.next_deadline() else { break };
        let wait = (deadline - clock.now().mono_ms).max(0) as u64;
        if stop.wait(Duration::from_millis(wait)) {
            return Ok(());
        }
        writer.tick(clock.now().mono_ms)?;
        if writer.holding() {
            tracing::info!(held = writer.stats().held, "the log still cannot be written; retrying");
        }
    }
    tracing::info!("every held line is written");
    Ok(())
}

fn writer_loop(writer: &mut LogWriter, rx: &Receiver<Msg>, clock: &dyn Clock) -> Result<u64, WriteError> {
    let mut readings = 0u64;
    loop {
        let msg = match writer.next_deadline() {
            Some(deadline) => {
                let wait = (deadline - clock.now().mono_ms).max(0) as u64;
                match rx.recv_timeout(Duration::from_millis(wait)) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return Ok(readings),
                }
            }
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => return Ok(readings),
            },
        };
        match msg {
            Some(Msg::Lines { source, at, pieces }) => {
                for p in pieces {
                    readings += 1;
                    match p.cut {
                        Some(reason) => writer.cut_reading(at, &source, &p.bytes, reason)?,
                        None => writer.reading(at, &source, &p.bytes)?,
                    }
                }
            }
            Some(Msg::Meta { at, event, args }) => writer.meta(at, event, &args)?,
            None => {}
        }
        let now = clock.now().mono_ms;
        if writer.next_deadline().is_some_and(|d| d <= now) {
            writer.tick(now)?;
        }
    }
}

/// How a connection ended.
enum End {
    Stopped,
    Eof,
    Error(String),
}

struct SourceTask {
    spec: SourceSpec,
    tx: SyncSender<Msg>,
    clock: Arc<dyn Clock>,
    stop: Stop,
    backoff: Backoff,
    /// For a receiver with a dataflash: which of its pages are logged.
    flash: Option<std::cell::RefCell<dataflash::Progress>>,
}

impl SourceTask {
    fn run(self) {
        let name: Arc<str> = self.spec.name.as_str().into();
        let mut delay = self.backoff.min;
        let mut unavailable = false;
        let mut ever_connected = false;
        // Set once the backoff has reached its cap and that was said.
        let mut quiet = false;
        while !self.stop.is_set() {
            match source::open(&self.spec.kind) {
                Ok(conn) => {
                    unavailable = false;
                    ever_connected = true;
                    quiet = false;
                    let mut args = MetaBuilder::new().kv("source", &name);
                    match &self.spec.kind {
                        SourceKind::Serial { path, baud, framing } => {
                            args = args.kv("path", path.display()).kv("baud", baud).kv("framing", framing)
                        }
                        SourceKind::Tcp { addr } => args = args.kv("addr", addr),
                        SourceKind::Stdin => {}
                    }
                    tracing::info!(source = %name, "connected");
                    if !self.send_meta("connect", args.build()) {
                        return;
                    }
                    if let Some(flash) = &self.flash {
                        flash.borrow_mut().connected();
                    }
                    let since = Instant::now();
                    let end = self.pump(&name, &conn);
                    drop(conn);
                    let (reason, text) = match &end {
                        End::Stopped => return,
                        End::Eof => ("eof", String::new()),
                        End::Error(e) => ("error", e.clone()),
                    };
                    if matches!(self.spec.kind, SourceKind::Stdin) {
                        self.send_meta("eof", MetaBuilder::new().kv("source", &name).build());
                        return;
                    }
                    tracing::warn!(source = %name, reason, error = %text, "disconnected; reopening with backoff");
                    self.send_meta("disconnect", MetaBuilder::new().kv("source", &name).kv("reason", reason).text(text.as_bytes()));
                    // A connection that lasted is a fresh start; a flapping one keeps backing off.
                    if since.elapsed() >= Duration::from_secs(5) {
                        delay = self.backoff.min;
                    }
                }
                Err(e) => {
                    if !unavailable {
                        if e.missing && !ever_connected {
                            // Most likely a wrong path, not an unplugged adapter: say it loudly.
                            tracing::error!(source = %name, error = %e, "the serial port does not exist: is the path right? `blackbox ports` lists the serial ports; capture waits for it to appear, retrying with backoff");
                        } else {
                            tracing::warn!(source = %name, error = %e, "source unavailable; retrying with backoff");
                        }
                        self.send_meta("unavailable", MetaBuilder::new().kv("source", &name).text(e.message.as_bytes()));
                        unavailable = true;
                    } else if !quiet {
                        self.still_waiting(&name, delay);
                        quiet = delay >= self.backoff.max;
                    }
                }
            }
            if self.stop.wait(delay) {
                return;
            }
            delay = (delay * 2).min(self.backoff.max);
        }
    }

    /// Says, at each step of the backoff up to its cap, that the source is
    /// still awaited, so that a capture waiting for a port never looks hung.
    fn still_waiting(&self, name: &str, delay: Duration) {
        let what = match &self.spec.kind {
            SourceKind::Serial { path, .. } => format!("serial port {}", path.display()),
            SourceKind::Tcp { addr } => addr.clone(),
            SourceKind::Stdin => return,
        };
        let hint = match self.spec.kind {
            SourceKind::Serial { .. } => " (`blackbox ports` lists the serial ports)",
            _ => "",
        };
        let secs = delay.as_secs_f64();
        if delay < self.backoff.max {
            tracing::warn!(source = %name, "still waiting for {what}{hint}; next attempt in {secs:.1} s");
        } else {
            tracing::warn!(source = %name, "still waiting for {what}{hint}; from now on it is tried every {secs:.1} s without further messages");
        }
    }

    fn send_meta(&self, event: &'static str, args: String) -> bool {
        self.tx.send(Msg::Meta { at: self.clock.now(), event, args }).is_ok()
    }

    /// Reads one connection until it ends, sending commands when due.
    fn pump(&self, name: &Arc<str>, conn: &Connection) -> End {
        let fd = conn.fd();
        let mut framer = Framer::new(self.spec.max_line);
        let mut buf = vec![0u8; READ_BUFFER];
        let start = Instant::now();
        let first = start + self.spec.init_delay;
        let mut init_due = (!self.spec.init.is_empty()).then_some(first);
        let mut poll_due: Vec<Instant> = self.spec.polls.iter().map(|_| first).collect();
        // A dataflash replay is asked for once the receiver saved the page it
        // was filling (or restarted), or after `REPLAY_WAIT` at the latest,
        // and after `init`. Nothing is sent while it runs (until `DF E`, at
        // most `REPLAY_LIMIT`): the firmware ends a replay at any input.
        let mut replay_due = self.flash.as_ref().and_then(|f| f.borrow().replay_command()).map(|_| start + dataflash::REPLAY_WAIT);
        let mut triggered = false;
        let mut replaying: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if replaying.is_some_and(|t| t <= now) {
                tracing::warn!(source = %name, "the dataflash replay did not end (no `DF E`) within {} s; sending commands again", dataflash::REPLAY_LIMIT.as_secs());
                replaying = None;
            }
            if replaying.is_none() && init_due.is_some_and(|t| t <= now) {
                init_due = None;
                for cmd in &self.spec.init {
                    if let Err(e) = self.send_command(name, conn, cmd) {
                        return self.finish(name, &mut framer, End::Error(e));
                    }
                }
            }
            if init_due.is_none() && replay_due.is_some_and(|t| triggered || t <= now) {
                replay_due = None;
                match self.ask_replay(name, conn) {
                    Ok(true) => replaying = Some(now + dataflash::REPLAY_LIMIT),
                    Ok(false) => {}
                    Err(e) => return self.finish(name, &mut framer, End::Error(e)),
                }
            }
            if replaying.is_none() {
                for (i, p) in self.spec.polls.iter().enumerate() {
                    if poll_due[i] <= now {
                        poll_due[i] = now + p.every;
                        if let Err(e) = self.send_command(name, conn, &p.command) {
                            return self.finish(name, &mut framer, End::Error(e));
                        }
                    }
                }
            }
            // While a replay runs only its limit is a deadline (commands wait).
            let commands = replaying.is_none().then(|| init_due.into_iter().chain(poll_due.iter().copied())).into_iter().flatten();
            let next = commands.chain(replay_due.filter(|_| init_due.is_none())).chain(replaying).min();
            let timeout = next.map(|t| stop::timespec(t.saturating_duration_since(Instant::now())));
            let stop_fd = self.stop.fd();
            let mut fds = [PollFd::new(&fd, PollFlags::IN), PollFd::new(&stop_fd, PollFlags::IN)];
            match poll(&mut fds, timeout.as_ref()) {
                Ok(_) => {}
                Err(Errno::INTR) => continue,
                Err(e) => return self.finish(name, &mut framer, End::Error(e.to_string())),
            }
            if !fds[1].revents().is_empty() {
                return self.finish(name, &mut framer, End::Stopped);
            }
            if fds[0].revents().is_empty() {
                continue;
            }
            match rustix::io::read(fd, &mut buf[..]) {
                Ok(0) => return self.finish(name, &mut framer, End::Eof),
                Ok(n) => {
                    let at = self.clock.now();
                    let mut pieces = Vec::new();
                    let mut ended = false;
                    framer.push(&buf[..n], |f| {
                        pieces.push(match f {
                            Frame::Line(b) => {
                                if let Some(flash) = &self.flash {
                                    if let Some(line) = std::str::from_utf8(b).ok().and_then(dataflash::parse) {
                                        triggered |= matches!(line, dataflash::FlashLine::Saved(_) | dataflash::FlashLine::Started { .. });
                                        ended |= matches!(line, dataflash::FlashLine::ReplayEnd { .. });
                                        flash.borrow_mut().observe(&line);
                                    }
                                }
                                Piece { bytes: b.to_vec(), cut: None }
                            }
                            Frame::Overlong(b) => Piece { bytes: b.to_vec(), cut: Some("overlong") },
                        })
                    });
                    if ended {
                        replaying = None;
                    }
                    if !pieces.is_empty() && self.tx.send(Msg::Lines { source: name.clone(), at, pieces }).is_err() {
                        return End::Stopped;
                    }
                }
                Err(Errno::INTR | Errno::AGAIN) => {}
                Err(e) => return self.finish(name, &mut framer, End::Error(std::io::Error::from(e).to_string())),
            }
        }
    }

    /// Writes out an unfinished line so no byte is lost, flagged with why.
    fn finish(&self, name: &Arc<str>, framer: &mut Framer, end: End) -> End {
        if let Some(bytes) = framer.take_pending() {
            let cut = match (&end, &self.spec.kind) {
                // At the end of standard input the last line simply had no terminator.
                (End::Eof, SourceKind::Stdin) => None,
                (End::Stopped, _) => Some("stop"),
                _ => Some("disconnect"),
            };
            let _ = self.tx.send(Msg::Lines { source: name.clone(), at: self.clock.now(), pieces: vec![Piece { bytes, cut }] });
        }
        end
    }

    /// Asks a dataflash receiver to replay what it saved after the last
    /// page logged; false when there is nothing to ask from.
    fn ask_replay(&self, name: &str, conn: &Connection) -> Result<bool, String> {
        let Some(flash) = &self.flash else { return Ok(false) };
        let progress = *flash.borrow();
        let Some(cmd) = progress.replay_command() else { return Ok(false) };
        match progress.through {
            Some(from) => tracing::info!(
                source = name,
                "asking the receiver to replay its dataflash after page {} (seq {}, time {})",
                from.page,
                from.seq,
                from.time
            ),
            None => tracing::info!(source = name, "asking the receiver to replay its dataflash since it started"),
        }
        self.send_command(name, conn, &cmd)?;
        Ok(true)
    }

    fn send_command(&self, name: &str, conn: &Connection, cmd: &str) -> Result<(), String> {
        tracing::debug!(source = name, command = cmd, "sending command");
        let mut bytes = Vec::with_capacity(cmd.len() + self.spec.command_eol.len());
        bytes.extend_from_slice(cmd.as_bytes());
        bytes.extend_from_slice(self.spec.command_eol.as_bytes());
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            match rustix::io::write(conn.fd(), rest) {
                Ok(n) => rest = &rest[n..],
                Err(Errno::INTR | Errno::AGAIN) => {}
                Err(e) => return Err(format!("cannot send {cmd:?}: {}", std::io::Error::from(e))),
            }
        }
        Ok(())
    }
}
