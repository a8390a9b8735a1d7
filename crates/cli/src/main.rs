//! The `blackbox` binary: parses arguments, turns them into validated
//! settings, dispatches with one `match` and prints errors. Behaviour lives
//! in the library crates.

/// Whether `-q` was given: informational messages on stderr are left out.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// An informational message for the person at the terminal (stderr), left
/// out with `-q`. Errors go through `CliError`; diagnostics through tracing.
macro_rules! note {
    ($($arg:tt)*) => {
        if !$crate::QUIET.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!($($arg)*);
        }
    };
}

mod args;
mod cmd;
mod error;
mod settings;
mod view;

use clap::Parser;
use std::process::ExitCode;

/// With glibc's allocator, at most two memory arenas (`MALLOC_ARENA_MAX=2`)
/// unless the environment sets its own number. glibc gives threads up to 8
/// arenas per core, and the indexer's threads (decoders, gatherer,
/// committer, sled's, started again for every day) leave each of them
/// holding freed memory: a rebuild of five days of a million lines peaked
/// at 67 to 70 MB with them and at 53 MB with two, in the same time. musl's
/// allocator (the static board builds) has no arenas.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // Called first in `main`, before any other thread exists; mallopt
        // only sets a parameter of the allocator and reports failure with 0,
        // which leaves the default (nothing to handle).
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let args = args::Args::parse();
    QUIET.store(args.global.quiet, std::sync::atomic::Ordering::Relaxed);
    init_tracing(args.global.verbose, args.global.quiet, args.global.color);
    let result = match args.command {
        args::Command::Capture(c) => cmd::capture::run(&args.global, c),
        args::Command::Index(c) => cmd::cache::index(&args.global, c),
        args::Command::Rebuild(c) => cmd::cache::rebuild(&args.global, c),
        args::Command::Query(c) => cmd::read::query(&args.global, c),
        args::Command::Export(c) => cmd::read::export(&args.global, c),
        args::Command::Schema(c) => cmd::read::schema(&args.global, c),
        args::Command::Stats(c) => cmd::read::stats(&args.global, c),
        args::Command::Status(c) => cmd::status::status(&args.global, c),
        args::Command::Health(c) => cmd::status::health(&args.global, c),
        args::Command::Events(c) => cmd::status::events(&args.global, c),
        args::Command::Tail(c) => cmd::tail::run(&args.global, c),
        args::Command::Verify(c) => cmd::verify::run(&args.global, c),
        args::Command::Ports(c) => cmd::ports::run(c),
        args::Command::Demo(c) => cmd::demo::run(&args.global, c),
        args::Command::Serve(c) => cmd::dashboard::serve(&args.global, c),
        args::Command::Passwd(c) => cmd::dashboard::passwd(&args.global, c),
        args::Command::Forward(c) => cmd::mqtt::forward(&args.global, c),
        args::Command::Mirror(c) => cmd::mqtt::mirror(&args.global, c),
        args::Command::Ack(c) => cmd::notify::ack(&args.global, c),
        args::Command::Silence(c) => cmd::notify::silence(&args.global, c),
        args::Command::Notify(c) => match c.command {
            args::NotifyCommand::Test(t) => cmd::notify::test(&args.global, t),
            args::NotifyCommand::Log(l) => cmd::notify::log(&args.global, l),
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => e.report(),
    }
}

fn init_tracing(verbose: u8, quiet: bool, color: args::ColorChoice) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // Colours only where a person reads them (the journal and log files get plain text).
    let ansi = view::color_for(color, std::io::IsTerminal::is_terminal(&std::io::stderr()));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).with_ansi(ansi).init();
}
