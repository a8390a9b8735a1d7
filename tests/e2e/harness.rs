//! Helpers: a temporary working directory, the binary, pseudo-terminals, and
//! waiting for a condition on the log with a deadline (never a bare sleep).

use rustix::process::{kill_process, Pid, Signal};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_blackbox");
/// Generous: CI machines are shared and slow.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub struct Dir {
    pub tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Self {
        Self { tmp: tempfile::tempdir().expect("temporary directory") }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn logs(&self) -> PathBuf {
        self.path().join("logs")
    }

    /// A command for the binary, run in this directory.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.path()).args(args).env_remove("RUST_LOG").env("NO_COLOR", "1");
        // Every process of a test shares one injectable clock (real time until `set_clock`).
        c.env(logfile::clock::CLOCK_FILE_ENV, self.path().join("clock"));
        c
    }

    /// Moves the clock of every blackbox process of this test (now and later
    /// ones) to `rfc3339`, from where it runs on at real speed. Running
    /// processes take it up within `OffsetClock::REREAD_MS`.
    pub fn set_clock(&self, rfc3339: &str) {
        let target = chrono::DateTime::parse_from_rfc3339(rfc3339).expect("time").timestamp_millis();
        let offset = target - chrono::Utc::now().timestamp_millis();
        let tmp = self.path().join("clock.new");
        std::fs::write(&tmp, offset.to_string()).expect("write clock");
        std::fs::rename(tmp, self.path().join("clock")).expect("rename clock");
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().expect("run blackbox")
    }

    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self.cmd(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn blackbox");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().expect("wait");
        match writer.join().expect("writer thread") {
            // A command that refuses to run exits without reading its input
            // (a second capture): what it said is the test's to check.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            written => written.expect("write stdin"),
        }
        out
    }

    pub fn spawn(&self, args: &[&str]) -> Proc {
        let child = self.cmd(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn blackbox");
        Proc { child }
    }

    /// Every line of every daily file, in date order.
    pub fn log_lines(&self) -> Vec<String> {
        all_text(&self.logs()).lines().map(str::to_string).collect()
    }

    /// The TEXT of every reading, in order.
    pub fn readings(&self) -> Vec<String> {
        self.log_lines().iter().filter_map(|l| l.strip_prefix("L ")).map(|l| l.splitn(3, ' ').nth(2).unwrap_or("").to_string()).collect()
    }

    /// Waits until `f(lines)` holds, failing the test with the log after the deadline.
    pub fn wait_for(&self, what: &str, f: impl Fn(&[String]) -> bool) {
        let start = Instant::now();
        loop {
            let lines = if self.logs().exists() { self.log_lines() } else { Vec::new() };
            if f(&lines) {
                return;
            }
            assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}; log:\n{}", lines.join("\n"));
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn verify(&self) -> Output {
        self.run(&["verify"])
    }
}

/// Every daily file under `logs`, concatenated in date order (empty if none).
pub fn all_text(logs: &Path) -> String {
    logfile::scan(logs).expect("scan logs").days.iter().map(|d| std::fs::read_to_string(&d.path).expect("read day")).collect()
}

/// A running blackbox process.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn signal(&self, sig: Signal) {
        kill_process(Pid::from_child(&self.child), sig).expect("signal");
    }

    /// Waits for exit (bounded) and returns status and output.
    pub fn wait(mut self) -> Output {
        let start = Instant::now();
        while self.child.try_wait().expect("try_wait").is_none() {
            if start.elapsed() > DEADLINE {
                let _ = self.child.kill();
                panic!("blackbox did not exit within {DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let status = self.child.wait().expect("wait");
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        if let Some(mut o) = self.child.stdout.take() {
            o.read_to_end(&mut stdout).expect("stdout");
        }
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_end(&mut stderr).expect("stderr");
        }
        Output { status, stdout, stderr }
    }

    pub fn terminate(self) -> Output {
        self.signal(Signal::TERM);
        self.wait()
    }

    pub fn kill(mut self) {
        self.signal(Signal::KILL);
        let _ = self.child.wait();
    }

    /// Number of open file descriptors.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).expect("fd dir").count()
    }

    /// CPU time (user + system) used so far, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("stat");
        let after_comm = &stat[stat.rfind(')').expect("comm") + 2..];
        let fields: Vec<&str> = after_comm.split(' ').collect();
        // Fields 14 and 15 of /proc/PID/stat, counted from after the command name.
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }
}

impl Proc {
    /// The process's stderr, line by line as it is written (taken away from
    /// what [`Proc::wait`] returns).
    pub fn stderr_lines(&mut self) -> StderrLines {
        let pipe = self.child.stderr.take().expect("stderr is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        StderrLines { rx, seen: Vec::new() }
    }
}

/// Lines of a process's stderr as they come.
pub struct StderrLines {
    rx: std::sync::mpsc::Receiver<String>,
    /// Every line received so far.
    pub seen: Vec<String>,
}

impl StderrLines {
    /// Waits (bounded) for a line containing `needle` and returns it.
    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(e) => panic!("no line containing {needle:?} on stderr ({e}); got:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Every line received so far, without waiting.
    pub fn drain(&mut self) -> &[String] {
        while let Ok(line) = self.rx.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// Every line, once the process has closed its stderr (exited).
    pub fn all(mut self) -> Vec<String> {
        while let Ok(line) = self.rx.recv_timeout(DEADLINE) {
            self.seen.push(line);
        }
        self.seen
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A pseudo-terminal: the test plays the device on `master`; capture opens `path`.
pub struct Pty {
    pub master: serialport::TTYPort,
    pub slave: Option<serialport::TTYPort>,
    pub path: String,
}

impl Pty {
    pub fn new() -> Self {
        use serialport::SerialPort;
        let (mut master, slave) = serialport::TTYPort::pair().expect("pseudo-terminal pair");
        // The simulated device waits for capture to read, however loaded the
        // machine: the pair's default timeout made a full terminal buffer an
        // error when capture was slow to be scheduled (seen once in CI).
        master.set_timeout(std::time::Duration::from_secs(60)).expect("pty timeout");
        let path = slave.name().expect("pty name");
        Self { master, slave: Some(slave), path }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        use serialport::SerialPort;
        // `read_until` shortens the timeout for its reads: writes wait long.
        self.master.set_timeout(std::time::Duration::from_secs(60)).expect("pty timeout");
        self.master.write_all(bytes).expect("write to pty");
        self.master.flush().expect("flush pty");
    }

    /// Reads what capture sent to the device until `until` is found.
    pub fn read_until(&mut self, until: &str) -> String {
        use serialport::SerialPort;
        self.master.set_timeout(Duration::from_millis(50)).expect("timeout");
        let start = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while !String::from_utf8_lossy(&got).contains(until) {
            assert!(start.elapsed() < DEADLINE, "timed out waiting for {until:?} from capture; got {:?}", String::from_utf8_lossy(&got));
            match self.master.read(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("read from pty: {e}"),
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }
}

/// The node map HouseMon used for the real day.
pub const HOUSEMON: &str = "[rf12.nodes]\n2 = \"roomNode\"\n3 = \"radioBlip\"\n4 = \"roomNode\"\n5 = \"roomNode\"\n6 = \"roomNode\"\n9 = \"homePower\"\n10 = \"roomNode\"\n11 = \"roomNode\"\n12 = \"roomNode\"\n13 = \"roomNode\"\n23 = \"roomNode\"\n24 = \"roomNode\"\n";

/// A site holding the real day (gzipped, flat layout) and the HouseMon node map.
pub fn real_site() -> Dir {
    let dir = Dir::new();
    std::fs::write(dir.path().join("blackbox.toml"), HOUSEMON).unwrap();
    std::fs::create_dir_all(dir.logs()).unwrap();
    // The archive as JeeLabs kept it: a gzipped day in the flat layout.
    std::fs::copy(real_day(), dir.logs().join("20121130.txt.gz")).unwrap();
    dir
}

/// Path of the real JeeLabs day, relative to the project root.
pub fn real_day() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/20121130.txt.gz");
    assert!(path.exists(), "this test needs the real JeeLabs day at {} (../shared/data beside the project)", path.display());
    path
}

/// The texts of the real day's readings, in order.
pub fn real_day_texts() -> Vec<String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(real_day()).expect("open real day")).read_to_string(&mut text).expect("read real day");
    text.lines().map(|l| l.splitn(4, ' ').nth(3).expect("reading text").to_string()).collect()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
