//! The command channel: a program run with the message on stdin and its
//! fields in the environment (`BLACKBOX_LEVEL`, `BLACKBOX_DEVICE`, ...).
//! Exit status 0 counts as sent; a program that runs past its time limit is
//! killed, with its process group (a shell script's children too).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// What a command's error output may add to a failure, at most.
const STDERR_KEEP: u64 = 2048;

/// Runs `argv` with `stdin` as its input and `env` added to its environment.
pub fn run(argv: &[String], stdin: &str, env: &[(String, String)], timeout: Duration) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else { return Err("no command".into()) };
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let pid = child.id();
    let input = stdin.to_string();
    let mut pipe_in = child.stdin.take();
    let mut pipe_err = child.stderr.take();
    let (done, finished) = mpsc::channel();
    std::thread::Builder::new()
        .name("notify command".into())
        .spawn(move || {
            // A program that does not read its input may exit first: its status tells.
            if let Some(mut p) = pipe_in.take() {
                let _ = p.write_all(input.as_bytes());
            }
            let mut err = Vec::new();
            if let Some(p) = pipe_err.take() {
                let _ = p.take(STDERR_KEEP).read_to_end(&mut err);
            }
            let _ = done.send((child.wait(), err));
        })
        .map_err(|e| format!("cannot start a thread for {program}: {e}"))?;
    let (status, err) = match finished.recv_timeout(timeout) {
        Ok(r) => r,
        Err(_) => {
            // The whole group: a script's children would hold its pipes open.
            if let Some(group) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            }
            let _ = finished.recv();
            return Err(format!("{program} ran longer than {} s and was killed", timeout.as_secs_f64()));
        }
    };
    let status = status.map_err(|e| format!("{program}: {e}"))?;
    if status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&err);
    let said = said.trim();
    let what = match status.code() {
        Some(c) => format!("{program} exited with status {c}"),
        None => format!("{program} was ended by a signal"),
    };
    Err(if said.is_empty() { what } else { format!("{what}: {said}") })
}
