//! While `index --follow` holds the cache (sled locks it), it answers the
//! read commands of other processes over a Unix socket in the cache
//! directory. The client sends its request as one JSON line; the answer is
//! framed: a kind byte (0 stdout, 1 stderr, 2 exit status), a big-endian
//! u32 length, the bytes.

use crate::cmd::read::Request;
use crate::error::CliError;
use index::Index;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

/// The socket's name inside the cache directory.
pub const SOCKET: &str = "query.sock";

const STDOUT: u8 = 0;
const STDERR: u8 = 1;
const EXIT: u8 = 2;

fn frame(w: &mut dyn Write, kind: u8, bytes: &[u8]) -> io::Result<()> {
    w.write_all(&[kind])?;
    w.write_all(&(bytes.len() as u32).to_be_bytes())?;
    w.write_all(bytes)
}

/// Output written as stdout frames.
struct Framed<W: Write>(W);

impl<W: Write> Write for Framed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !buf.is_empty() {
            frame(&mut self.0, STDOUT, buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Removes the socket when the follower stops.
#[derive(Debug)]
pub struct Server(PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Starts answering requests on `<cache>/query.sock`.
pub fn start(cache: &Path, idx: Arc<Mutex<Index>>) -> io::Result<Server> {
    let path = cache.join(SOCKET);
    // A socket left by a follower that was killed: nobody listens on it.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::thread::Builder::new().name("query server".into()).spawn(move || {
        for conn in listener.incoming().flatten() {
            let idx = idx.clone();
            let _ = std::thread::Builder::new().name("query".into()).spawn(move || {
                if let Err(e) = answer(conn, &idx) {
                    tracing::debug!(error = %e, "a query client went away");
                }
            });
        }
    })?;
    Ok(Server(path))
}

fn answer(conn: UnixStream, idx: &Mutex<Index>) -> io::Result<()> {
    let mut line = String::new();
    BufReader::new(&conn).read_line(&mut line)?;
    let mut w = BufWriter::new(&conn);
    let request: Request = match serde_json::from_str(&line) {
        Ok(r) => r,
        Err(e) => {
            frame(&mut w, STDERR, format!("error: the follower could not read the request: {e}").as_bytes())?;
            frame(&mut w, EXIT, &[2])?;
            return w.flush();
        }
    };
    let mut notes = Vec::new();
    let result: Result<u8, CliError> = {
        let guard = idx.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = BufWriter::with_capacity(64 * 1024, Framed(&mut w));
        let r = request.answer(&guard, &mut out, &mut |n| notes.push(n));
        out.flush().map_err(CliError::from).and(r)
    };
    // The client's notes (an empty answer) go to its stderr, not the follower's.
    for n in &notes {
        frame(&mut w, STDERR, n.as_bytes())?;
    }
    match result {
        Ok(code) => frame(&mut w, EXIT, &[code])?,
        Err(e) => {
            frame(&mut w, STDERR, e.message().as_bytes())?;
            frame(&mut w, EXIT, &[e.code])?;
        }
    }
    w.flush()
}

/// Sends `req` to the follower holding `cache` and relays its answer.
pub fn ask(cache: &Path, req: &Request) -> anyhow::Result<ExitCode> {
    ask_into(cache, req, &mut io::stdout().lock()).map(ExitCode::from)
}

/// Sends `req` to the follower holding `cache`, writes its output to
/// `stdout` (its errors go to stderr) and returns its exit status.
pub fn ask_into(cache: &Path, req: &Request, stdout: &mut dyn Write) -> anyhow::Result<u8> {
    let mut conn = UnixStream::connect(cache.join(SOCKET))?;
    serde_json::to_writer(&mut conn, req)?;
    conn.write_all(b"\n")?;
    conn.shutdown(std::net::Shutdown::Write)?;
    let mut r = BufReader::with_capacity(64 * 1024, conn);
    let mut buf = Vec::new();
    loop {
        let mut head = [0u8; 5];
        r.read_exact(&mut head).map_err(|e| anyhow::anyhow!("the follower closed the connection without an exit status ({e})"))?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        buf.resize(len, 0);
        r.read_exact(&mut buf)?;
        match head[0] {
            STDOUT => stdout.write_all(&buf)?,
            STDERR => {
                stdout.flush()?;
                eprintln!("{}", String::from_utf8_lossy(&buf));
            }
            EXIT => {
                stdout.flush()?;
                return Ok(buf.first().copied().unwrap_or(1));
            }
            k => anyhow::bail!("the follower sent an unknown frame kind {k}"),
        }
    }
}
