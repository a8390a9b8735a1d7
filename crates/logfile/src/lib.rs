//! The blackbox log format: the daily files that are the product's only
//! source of truth, and everything that reads or writes them.
//!
//! - [`escape`]: reversible escaping of device bytes into one UTF-8 line;
//! - [`framer`]: cutting a byte stream into lines, whatever the terminators;
//! - [`record`]: formatting and parsing `L` and `#` lines;
//! - [`layout`]: where daily files live, in both layouts, plain or gzipped;
//! - [`reader`]: complete lines from any offset, never a torn last line;
//! - [`writer`]: the only writer, with the header chain, clock rules,
//!   durability policy and torn-tail repair;
//! - [`verify`]: checking a log directory.
//!
//! Architecture invariant: nothing here knows about devices or decoding.

pub mod clock;
pub mod escape;
pub mod framer;
pub mod layout;
pub mod lock;
pub mod reader;
pub mod record;
pub mod storage;
pub mod tail;
pub mod time;
pub mod verify;
pub mod writer;

pub use clock::{Clock, ManualClock, OffsetClock, Stamp, SystemClock};
pub use escape::{escape, escape_into, unescape};
pub use framer::{Frame, Framer, DEFAULT_MAX_LINE};
pub use layout::{scan, DayFile, Scan};
pub use reader::{DayReader, RawLine};
pub use record::{parse_line, Line, LineError, MetaArgs, MetaBuilder};
pub use storage::{RealStorage, Storage, StorageFile};
pub use time::TimeOfDay;
pub use writer::{LogWriter, SyncPolicy, WriteError, WriterOptions, WriterStats};
