//! [`ErrorContext`]: OS errors that say what evloop was doing.
//!
//! `bind 127.0.0.1:6379: Address already in use (os error 98)` tells a user
//! more than the bare OS message. Setup calls (bind, listen, connect,
//! spawn, pipe) wrap their OS errors this way; the `io::Error`'s kind stays
//! the OS error's, so code that matches on `kind()` is unaffected.

use std::fmt;
use std::io;

/// An OS error with what evloop was doing when it got it, as in
/// `bind 127.0.0.1:6379: Address already in use (os error 98)`. The
/// error's kind is the OS error's; [`std::error::Error::source`] gives the
/// OS error itself (with its `raw_os_error`).
#[derive(Debug)]
pub struct ErrorContext {
    what: String,
    source: io::Error,
}

impl fmt::Display for ErrorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.source)
    }
}

impl std::error::Error for ErrorContext {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl ErrorContext {
    /// The OS error code behind an error, looking through the context evloop
    /// added (`io::Error::raw_os_error` of a wrapped error is `None`).
    pub fn os_error(e: &io::Error) -> Option<i32> {
        e.raw_os_error().or_else(|| {
            e.get_ref()?
                .downcast_ref::<ErrorContext>()?
                .source
                .raw_os_error()
        })
    }
}

/// Wraps `e` with what was being done, keeping its kind.
pub(crate) fn with_context(e: io::Error, what: impl Into<String>) -> io::Error {
    io::Error::new(
        e.kind(),
        ErrorContext {
            what: what.into(),
            source: e,
        },
    )
}
