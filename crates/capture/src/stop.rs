//! A stop request that every thread can wait on with `poll`, so that
//! blocked reads and reconnection waits end at once, without polling loops.

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Why capture stopped, when something asked it to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopCause {
    Signal(i32),
    Requested,
}

#[derive(Debug)]
struct Inner {
    read: OwnedFd,
    write: OwnedFd,
    /// 0: running; -1: requested; otherwise the signal number.
    cause: AtomicI32,
}

/// A shared stop request. Triggering writes one byte into a pipe that is
/// never read, so the read end stays readable and wakes every `poll` on it.
#[derive(Debug, Clone)]
pub struct Stop(Arc<Inner>);

impl Stop {
    pub fn new() -> std::io::Result<Self> {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        Ok(Self(Arc::new(Inner { read, write, cause: AtomicI32::new(0) })))
    }

    /// Asks everything to stop.
    pub fn trigger(&self) {
        self.set(-1);
    }

    fn set(&self, cause: i32) {
        if self.0.cause.compare_exchange(0, cause, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            // If the pipe were full a wake-up byte is already there; either way pollers wake.
            let _ = rustix::io::write(&self.0.write, &[1]);
        }
    }

    pub fn is_set(&self) -> bool {
        self.0.cause.load(Ordering::SeqCst) != 0
    }

    pub fn cause(&self) -> Option<StopCause> {
        match self.0.cause.load(Ordering::SeqCst) {
            0 => None,
            -1 => Some(StopCause::Requested),
            s => Some(StopCause::Signal(s)),
        }
    }

    /// The file descriptor that becomes readable when stop is triggered.
    pub fn fd(&self) -> impl AsFd + '_ {
        &self.0.read
    }

    /// Waits up to `timeout`; returns true if stop was triggered.
    pub fn wait(&self, timeout: Duration) -> bool {
        let ts = timespec(timeout);
        let mut fds = [PollFd::new(&self.0.read, PollFlags::IN)];
        loop {
            match poll(&mut fds, Some(&ts)) {
                Err(rustix::io::Errno::INTR) => continue,
                _ => return self.is_set(),
            }
        }
    }

    /// Triggers this stop on SIGTERM, SIGINT and SIGHUP, from a helper thread.
    /// A second signal while stopping (a disk that hangs) exits at once with
    /// status 130, as shells expect after an interrupt.
    pub fn on_signals(&self) -> std::io::Result<()> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
        let stop = self.clone();
        std::thread::Builder::new().name("signals".into()).spawn(move || {
            for sig in signals.forever() {
                if stop.is_set() {
                    eprintln!("blackbox: {} again while stopping; exiting without waiting", signal_name(sig));
                    std::process::exit(130);
                }
                tracing::info!(signal = sig, "stopping");
                stop.set(sig);
            }
        })?;
        Ok(())
    }
}

pub(crate) fn timespec(d: Duration) -> Timespec {
    Timespec { tv_sec: d.as_secs() as _, tv_nsec: d.subsec_nanos() as _ }
}

/// The name of a signal for metadata lines.
pub fn signal_name(sig: i32) -> String {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    match sig {
        SIGTERM => "SIGTERM".into(),
        SIGINT => "SIGINT".into(),
        SIGHUP => "SIGHUP".into(),
        s => format!("signal-{s}"),
    }
}
