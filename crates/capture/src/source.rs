//! Where lines come from: serial ports, TCP (ser2net-style), standard input.

use rustix::fd::{AsFd, BorrowedFd};
use std::fmt;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How to reach a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// A serial port, opened by path each time (so a re-pointed symlink is
    /// followed), 8 data bits, no parity, 1 stop bit unless configured.
    Serial { path: PathBuf, baud: u32, framing: Framing },
    /// A TCP client, for example to ser2net.
    Tcp { addr: String },
    /// Standard input; the source ends at the end of its input.
    Stdin,
}

/// Data bits, parity and stop bits, written as in `8N1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Framing {
    pub data_bits: u8,
    pub parity: char,
    pub stop_bits: u8,
}

impl Default for Framing {
    fn default() -> Self {
        Self { data_bits: 8, parity: 'N', stop_bits: 1 }
    }
}

impl std::str::FromStr for Framing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let b = s.as_bytes();
        let ok = b.len() == 3 && (b'5'..=b'8').contains(&b[0]) && b"NEOneo".contains(&b[1]) && (b[2] == b'1' || b[2] == b'2');
        if !ok {
            return Err(format!("invalid framing {s:?}: expected data bits, parity and stop bits such as 8N1 or 7E1"));
        }
        Ok(Self { data_bits: b[0] - b'0', parity: (b[1] as char).to_ascii_uppercase(), stop_bits: b[2] - b'0' })
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.data_bits, self.parity, self.stop_bits)
    }
}

/// A command sent to the device on a schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Poll {
    pub command: String,
    pub every: Duration,
}

/// Everything capture needs to know about one source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSpec {
    /// The SOURCE column of the log: no spaces (see [`validate_name`]).
    pub name: String,
    pub kind: SourceKind,
    /// Commands sent after each connect (after `init_delay`).
    pub init: Vec<String>,
    /// Time to wait after connecting before sending `init` (an Arduino
    /// resets when its port is opened and needs a moment).
    pub init_delay: Duration,
    /// Commands sent periodically, the first time together with `init`.
    pub polls: Vec<Poll>,
    /// Appended to every command.
    pub command_eol: String,
    /// Longest line in bytes before it is cut.
    pub max_line: usize,
    /// An RF12demo receiver with a dataflash: after each connect, ask it to
    /// replay what it saved since the last page logged ([`crate::dataflash`]).
    pub dataflash: bool,
}

impl SourceSpec {
    pub fn new(name: impl Into<String>, kind: SourceKind) -> Self {
        Self {
            name: name.into(),
            kind,
            init: Vec::new(),
            init_delay: Duration::ZERO,
            polls: Vec::new(),
            command_eol: "\r".into(),
            max_line: logfile::DEFAULT_MAX_LINE,
            dataflash: false,
        }
    }
}

/// Checks that a source name can stand in the SOURCE column and in sensor
/// ids (`SOURCE/DEVICE/FIELD`).
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("source name {name:?} must be 1 to 64 characters"));
    }
    match name.chars().find(|&c| !(c.is_ascii_alphanumeric() || "-_.:@+".contains(c))) {
        Some(c) => Err(format!("source name {name:?} contains {c:?}; use letters, digits and - _ . : @ +")),
        None => Ok(()),
    }
}

/// The default source name for a serial port path, following JeeMon:
/// `/dev/ttyUSB0` gives `usb-USB0`, `/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A40117UK-if00-port0`
/// gives `usb-A40117UK`, `/dev/ttyS1` gives `tty-S1`.
pub fn default_port_name(path: &Path) -> String {
    let base = path.file_name().map(|b| b.to_string_lossy().into_owned()).unwrap_or_default();
    let in_by_id = path.parent().is_some_and(|p| p.ends_with("by-id"));
    let name = if in_by_id {
        // udev names them `usb-VENDOR_PRODUCT_SERIAL-if00-port0`: the serial
        // number is what identifies the adapter. A name without the `usb-`
        // bus prefix or without underscores is kept whole, never prefixed twice.
        let core = base.split("-if").next().unwrap_or(&base);
        match core.strip_prefix("usb-") {
            Some(rest) => format!("usb-{}", rest.rsplit('_').next().unwrap_or(rest)),
            None => core.to_string(),
        }
    } else if let Some(rest) = base.strip_prefix("tty") {
        if rest.starts_with("USB") || rest.starts_with("ACM") {
            format!("usb-{rest}")
        } else {
            format!("tty-{rest}")
        }
    } else if path.parent().is_some_and(|p| p.ends_with("pts")) {
        format!("pts-{base}")
    } else {
        base
    };
    sanitize(&name)
}

/// The default source name for a TCP address: `tcp-HOST-PORT`.
pub fn default_tcp_name(addr: &str) -> String {
    sanitize(&format!("tcp-{}", addr.replace(':', "-")))
}

fn sanitize(s: &str) -> String {
    let s: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.@+".contains(c) { c } else { '-' }).take(64).collect();
    if s.is_empty() {
        "serial".into()
    } else {
        s
    }
}

/// An open connection to a device.
#[derive(Debug)]
pub(crate) enum Connection {
    Serial(serialport::TTYPort),
    Tcp(TcpStream),
    Stdin,
}

impl Connection {
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Connection::Serial(p) => {
                use std::os::fd::{AsRawFd, BorrowedFd as StdBorrowed};
                // `TTYPort` owns its descriptor for as long as `self` lives, which bounds the borrow.
                #[allow(unsafe_code)]
                unsafe {
                    StdBorrowed::borrow_raw(p.as_raw_fd())
                }
            }
            Connection::Tcp(s) => s.as_fd(),
            Connection::Stdin => rustix::stdio::stdin(),
        }
    }
}

/// Why a source could not be opened, with a hint for the user.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct OpenError {
    pub message: String,
    /// The serial port's path does not exist (rather than being busy or forbidden).
    pub missing: bool,
}

pub(crate) fn open(kind: &SourceKind) -> Result<Connection, OpenError> {
    match kind {
        SourceKind::Serial { path, baud, framing } => open_serial(path, *baud, *framing).map(Connection::Serial),
        SourceKind::Tcp { addr } => {
            let fail = |e: &dyn fmt::Display| OpenError { message: format!("cannot connect to {addr}: {e}"), missing: false };
            let addrs = addr.to_socket_addrs().map_err(|e| fail(&e))?;
            let mut last = None;
            for a in addrs {
                match TcpStream::connect_timeout(&a, Duration::from_secs(5)) {
                    Ok(s) => return Ok(Connection::Tcp(s)),
                    Err(e) => last = Some(e),
                }
            }
            Err(fail(&last.map_or_else(|| "no address".to_string(), |e| e.to_string())))
        }
        SourceKind::Stdin => Ok(Connection::Stdin),
    }
}

fn open_serial(path: &Path, baud: u32, framing: Framing) -> Result<serialport::TTYPort, OpenError> {
    use serialport::{DataBits, FlowControl, Parity, StopBits};
    let data_bits = match framing.data_bits {
        5 => DataBits::Five,
        6 => DataBits::Six,
        7 => DataBits::Seven,
        _ => DataBits::Eight,
    };
    let parity = match framing.parity {
        'E' => Parity::Even,
        'O' => Parity::Odd,
        _ => Parity::None,
    };
    let stop_bits = if framing.stop_bits == 2 { StopBits::Two } else { StopBits::One };
    let display = path.display();
    serialport::new(path.to_string_lossy(), baud)
        .data_bits(data_bits)
        .parity(parity)
        .stop_bits(stop_bits)
        .flow_control(FlowControl::None)
        .open_native()
        .map_err(|e| OpenError {
            message: format!("cannot open serial port {display}: {}{}", e.description, open_hint(&e)),
            missing: !path.exists(),
        })
}

/// What to do about a serial port that would not open.
fn open_hint(e: &serialport::Error) -> String {
    let busy = ["exclusive lock", "EWOULDBLOCK", "busy", "Resource temporarily unavailable"].iter().any(|m| e.description.contains(m));
    match e.kind() {
        _ if busy => " (the port is in use by another process; blackbox opens ports exclusively)".to_string(),
        serialport::ErrorKind::NoDevice | serialport::ErrorKind::Io(std::io::ErrorKind::NotFound) => {
            format!(" (no such device; {})", existing_ports())
        }
        serialport::ErrorKind::Io(std::io::ErrorKind::PermissionDenied) => {
            " (permission denied: add the user to the dialout group, `sudo usermod -aG dialout $USER`, then log in again)".to_string()
        }
        _ => String::new(),
    }
}

/// The serial ports that do exist, for an error about one that does not:
/// the stable /dev/serial/by-id names first, as the guide recommends them.
fn existing_ports() -> String {
    let mut names: Vec<String> =
        std::fs::read_dir("/dev/serial/by-id").map(|d| d.flatten().map(|e| e.path().display().to_string()).collect()).unwrap_or_default();
    names.sort();
    let mut others: Vec<String> = serialport::available_ports().unwrap_or_default().into_iter().map(|p| p.port_name).collect();
    others.sort();
    names.extend(others);
    const SHOWN: usize = 8;
    match names.len() {
        0 => "this machine has no serial ports right now: is the adapter plugged in?".to_string(),
        n if n <= SHOWN => format!("ports here: {}", names.join(", ")),
        n => format!("ports here: {}, and {} more (`blackbox ports` lists them all)", names[..SHOWN].join(", "), n - SHOWN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_errors_say_what_to_do() {
        let err = |kind, d: &str| serialport::Error::new(kind, d);
        let denied = open_hint(&err(serialport::ErrorKind::Io(std::io::ErrorKind::PermissionDenied), "Permission denied"));
        assert!(denied.contains("dialout group") && denied.contains("usermod -aG dialout"), "{denied}");
        let missing = open_hint(&err(serialport::ErrorKind::Io(std::io::ErrorKind::NotFound), "No such file or directory"));
        assert!(
            missing.starts_with(" (no such device; ") && (missing.contains("ports here: ") || missing.contains("no serial ports")),
            "{missing}"
        );
        let busy = open_hint(&err(serialport::ErrorKind::Io(std::io::ErrorKind::Other), "Unable to acquire exclusive lock"));
        assert!(busy.contains("in use by another process"), "{busy}");
        assert_eq!(open_hint(&err(serialport::ErrorKind::InvalidInput, "bad baud")), "");
    }

    #[test]
    fn default_names_follow_jeemon() {
        let name = |p: &str| default_port_name(Path::new(p));
        assert_eq!(name("/dev/ttyUSB0"), "usb-USB0");
        assert_eq!(name("/dev/ttyACM1"), "usb-ACM1");
        assert_eq!(name("/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A40117UK-if00-port0"), "usb-A40117UK");
        // Issue 12: the bus prefix was doubled (`usb-usb-nothing-here`).
        assert_eq!(name("/dev/serial/by-id/usb-nothing-here"), "usb-nothing-here");
        assert_eq!(name("/dev/serial/by-id/usb-Arduino__www.arduino.cc__0043_75237333536351F0A0B1-if00"), "usb-75237333536351F0A0B1");
        assert_eq!(name("/dev/serial/by-id/pci-WCH_CH384_Serial-if01"), "pci-WCH_CH384_Serial");
        assert_eq!(name("/dev/ttyS1"), "tty-S1");
        assert_eq!(name("/dev/pts/3"), "pts-3");
        assert_eq!(default_tcp_name("ser2net.local:3001"), "tcp-ser2net.local-3001");
        for n in ["usb-USB0", "usb-A40117UK", "tty-S1", "pts-3", "tcp-ser2net.local-3001", "stdin"] {
            validate_name(n).unwrap();
        }
        assert!(validate_name("has space").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name("").is_err());
    }

    #[test]
    fn framing_parses() {
        assert_eq!("8N1".parse::<Framing>().unwrap(), Framing::default());
        assert_eq!("7e2".parse::<Framing>().unwrap().to_string(), "7E2");
        assert!("9N1".parse::<Framing>().is_err());
    }
}
