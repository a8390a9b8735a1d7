//! Waiting for a log directory to change: file events (notify), a periodic
//! rescan as a safety net for missed events, and SIGTERM/SIGINT/SIGHUP.

use crate::error::{CliError, SetupExt};
use anyhow::Context;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::Duration;

/// What ended a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Something under the directory changed.
    Changed,
    /// The rescan interval passed without an event.
    Rescan,
    /// A stop signal arrived.
    Stop,
}

/// Called from the watch's thread on every change, before any settling.
type Hook = Box<dyn Fn() + Send + Sync>;

pub struct Watch {
    rx: mpsc::Receiver<Wake>,
    stopper: Stopper,
    hooks: Arc<Mutex<Vec<Hook>>>,
    _watcher: notify::RecommendedWatcher,
}

/// Stops a [`Watch`] from another thread, as a signal would.
#[derive(Clone, Debug)]
pub struct Stopper {
    tx: mpsc::Sender<Wake>,
    stopping: Arc<AtomicBool>,
}

impl Stopper {
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.tx.send(Wake::Stop);
    }
}

impl Watch {
    /// Watches `dir` recursively and stops on the usual signals.
    pub fn new(dir: &Path) -> Result<Watch, CliError> {
        use notify::Watcher;
        let (tx, rx) = mpsc::channel();
        let events = tx.clone();
        let hooks: Arc<Mutex<Vec<Hook>>> = Arc::default();
        let calls = hooks.clone();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            use notify::event::{AccessKind, AccessMode, EventKind};
            match res {
                // Opening, reading and closing a file changes nothing; the
                // watcher's own reads would otherwise wake it for ever.
                Ok(e) if matches!(e.kind, EventKind::Access(a) if a != AccessKind::Close(AccessMode::Write)) => {}
                Ok(_) => {
                    for hook in calls.lock().unwrap_or_else(PoisonError::into_inner).iter() {
                        hook();
                    }
                    let _ = events.send(Wake::Changed);
                }
                Err(_) => {}
            }
        })
        .context("cannot watch the log directory")
        .setup()?;
        watcher.watch(dir, notify::RecursiveMode::Recursive).with_context(|| format!("cannot watch {}", dir.display())).setup()?;
        let mut signals =
            signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT, signal_hook::consts::SIGHUP])
                .context("cannot install signal handlers")
                .setup()?;
        let stopper = Stopper { tx, stopping: Arc::new(AtomicBool::new(false)) };
        let on_signal = stopper.clone();
        std::thread::spawn(move || {
            if signals.forever().next().is_some() {
                on_signal.stop();
            }
        });
        Ok(Watch { rx, stopper, hooks, _watcher: watcher })
    }

    /// Calls `hook` on every change as soon as it is seen, without the
    /// settling [`Watch::wait`] does (for work that must not wait, such as
    /// forwarding a new line). It runs on the watch's thread: keep it short.
    pub fn on_change(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.hooks.lock().unwrap_or_else(PoisonError::into_inner).push(Box::new(hook));
    }

    /// A handle that stops this watch from another thread.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// True once a stop signal arrived: long work should end at its next safe point.
    pub fn stopping(&self) -> bool {
        self.stopper.stopping.load(Ordering::SeqCst)
    }

    /// Waits for a change, the rescan interval or a stop; after a change,
    /// further events within `settle` are taken together.
    pub fn wait(&self, rescan: Duration, settle: Duration) -> Wake {
        match self.rx.recv_timeout(rescan) {
            Ok(Wake::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => Wake::Stop,
            Ok(_) => {
                let until = std::time::Instant::now() + settle;
                while let Ok(w) = self.rx.recv_timeout(until.saturating_duration_since(std::time::Instant::now())) {
                    if w == Wake::Stop {
                        return Wake::Stop;
                    }
                }
                Wake::Changed
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Wake::Rescan,
        }
    }
}
