//! The file-system operations the writer needs, behind a trait so that tests
//! can inject a full disk, a failing `fdatasync` or a power cut.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Directory operations.
pub trait Storage: Send + std::fmt::Debug {
    /// Creates one directory; returns `true` if it did not exist.
    fn create_dir(&mut self, path: &Path) -> io::Result<bool>;
    /// Opens (creating if needed) a file for appending.
    fn open_append(&mut self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Makes a directory's entries durable.
    fn sync_dir(&mut self, path: &Path) -> io::Result<()>;
}

/// An open log file.
pub trait StorageFile: Send + std::fmt::Debug {
    /// One `write()` call; may write less than `buf`.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// `fdatasync`.
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// Current size.
    fn size(&self) -> io::Result<u64>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealStorage;

impl Storage for RealStorage {
    fn create_dir(&mut self, path: &Path) -> io::Result<bool> {
        match std::fs::create_dir(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn open_append(&mut self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let file = OpenOptions::new().append(true).create(true).open(path)?;
        Ok(Box::new(RealFile(file)))
    }

    fn sync_dir(&mut self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
}

#[derive(Debug)]
struct RealFile(File);

impl StorageFile for RealFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match self.0.write(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}
