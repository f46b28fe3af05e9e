//! The library's one error type: what failed, and why, in words a user can act on.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A plain message, already complete.
    #[error("{0}")]
    Msg(String),
    /// A system call or file operation that failed, with what was being done.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: nix::errno::Errno,
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
        self.map_err(|source| Error::Io {
            context: what(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, nix::errno::Errno> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Sys {
            context: what(),
            source,
        })
    }
}
