//! The library's one error type: what failed, and why, in words a user can act on.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A plain message, already complete.
    #[error("{0}")]
    Msg(String),
    /// A system call or file operation that failed, with what was being done.
    /// The cause is part of the message (the log the shim reads holds the
    /// message alone), so it is not also given as a source: printed with
    /// its chain, it would be said twice.
    #[error("{context}: {error}")]
    Io { context: String, error: io::Error },
    #[error("{context}: {error}")]
    Sys {
        context: String,
        error: nix::errno::Errno,
    },
    #[error("config.json: {0}")]
    Config(String),
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container with id {0} already exists")]
    Exists(String),
    #[error("container not running")]
    NotRunning,
    #[error("no such process")]
    NoSuchProcess,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub fn msg(text: impl Into<String>) -> Error {
    Error::Msg(text.into())
}

/// Adds what was being done to an I/O or system error.
pub trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, io::Error> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|error| Error::Io {
            context: what(),
            error,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, nix::errno::Errno> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|error| Error::Sys {
            context: what(),
            error,
        })
    }
}
