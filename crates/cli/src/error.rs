//! Exit statuses: 0 success, 1 the command ran but found problems (or failed
//! while running), 2 usage or setup errors. Output to a closed pipe ends
//! quietly with status 0.

use std::process::ExitCode;

#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub error: anyhow::Error,
}

impl CliError {
    /// Prints the whole error chain to stderr and returns the exit status.
    pub fn report(self) -> ExitCode {
        if is_broken_pipe(&self.error) {
            return ExitCode::SUCCESS;
        }
        eprintln!("{}", self.message());
        ExitCode::from(self.code)
    }

    /// `error: ...` with the whole chain of causes. A cause that its parent
    /// already quotes (`cannot read x.toml: No such file or directory`, whose
    /// source is that same I/O error) is not printed twice.
    pub fn message(&self) -> String {
        let mut last = self.error.to_string();
        let mut msg = format!("error: {last}");
        for cause in self.error.chain().skip(1) {
            let text = cause.to_string();
            if !last.contains(&text) {
                msg.push_str(&format!("\n  caused by: {text}"));
                last = text;
            }
        }
        msg
    }
}

/// Runtime failures (status 1).
impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        Self { code: 1, error }
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        Self { code: 1, error: error.into() }
    }
}

/// Marks an error as a usage or setup error (status 2).
pub trait SetupExt<T> {
    fn setup(self) -> Result<T, CliError>;
}

impl<T, E: Into<anyhow::Error>> SetupExt<T> for Result<T, E> {
    fn setup(self) -> Result<T, CliError> {
        self.map_err(|e| CliError { code: 2, error: e.into() })
    }
}

pub fn setup_error(msg: impl std::fmt::Display) -> CliError {
    CliError { code: 2, error: anyhow::anyhow!("{msg}") }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// Cache errors while running (status 1).
impl From<index::IndexError> for CliError {
    fn from(error: index::IndexError) -> Self {
        Self { code: 1, error: error.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_cause_quoted_by_its_parent_is_printed_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        /// As the config crate's read error: it quotes its source.
        #[derive(Debug)]
        struct Read {
            source: std::io::Error,
        }
        impl std::fmt::Display for Read {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "cannot read nope.toml: {}", self.source)
            }
        }
        impl std::error::Error for Read {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.source)
            }
        }
        let e = CliError::from(anyhow::Error::new(Read { source: io() }));
        assert_eq!(e.message(), "error: cannot read nope.toml: No such file or directory (os error 2)");
        // Causes that add something are kept.
        let e = CliError::from(Err::<(), _>(io()).context("cannot capture into logs").unwrap_err());
        assert_eq!(e.message(), "error: cannot capture into logs\n  caused by: No such file or directory (os error 2)");
    }
}
