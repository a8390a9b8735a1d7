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

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn stdin_environment_status_and_error_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!("cat > '{}'; echo \"$BLACKBOX_LEVEL\" >> '{}'", out.display(), out.display());
        run(&sh(&script), "the text", &[("BLACKBOX_LEVEL".into(), "critical".into())], Duration::from_secs(10)).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "the textcritical\n");
        let err = run(&sh("echo modem busy >&2; exit 4"), "", &[], Duration::from_secs(10)).unwrap_err();
        assert_eq!(err, "sh exited with status 4: modem busy");
        // A program that does not read its input still counts by its status.
        run(&sh("exit 0"), &"x".repeat(1 << 20), &[], Duration::from_secs(10)).unwrap();
        assert!(run(&["/no/such/program".into()], "", &[], Duration::from_secs(1)).unwrap_err().starts_with("cannot run /no/such/program"));
    }

    #[test]
    fn a_command_past_its_time_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // The child of the shell holds stderr open: only killing the group ends it.
        let script = format!("sleep 60 & echo $! > '{}'; wait", pid_file.display());
        let err = run(&sh(&script), "", &[], Duration::from_millis(300)).unwrap_err();
        assert!(err.contains("ran longer than 0.3 s and was killed"), "{err}");
        let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_string();
        // Killed with its group: it ends (or is a zombie until init reaps it)
        // within moments, not after its 60 s.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if state.is_empty() || state.contains(") Z") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "sleep still runs: {state}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
