//! One clear line and a non-zero exit for every failure, never a panic.

use std::fmt::{self, Display};
use std::io;
use std::process::ExitCode;

/// A failed step of a program: which call, on what, and why.
///
/// Displays as `bind 127.0.0.1:8001: Address already in use (os error 98)`.
#[derive(Debug)]
pub struct Failure {
    what: String,
    why: String,
}

impl Failure {
    /// A failure that is not an OS error (bad input, a protocol violation).
    pub fn new(what: impl Display, why: impl Display) -> Failure {
        Failure { what: what.to_string(), why: why.to_string() }
    }
}

impl Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.why)
    }
}

impl std::error::Error for Failure {}

/// Turns an I/O error into a [`Failure`] that names the call and address.
pub trait OrFail<T> {
    /// `what` is the call and its object, e.g. `format!("bind {addr}")`.
    fn or_fail(self, what: impl Display) -> Result<T, Failure>;
}

impl<T> OrFail<T> for io::Result<T> {
    fn or_fail(self, what: impl Display) -> Result<T, Failure> {
        self.map_err(|err| Failure::new(what, err))
    }
}

impl<T> OrFail<T> for nix::Result<T> {
    fn or_fail(self, what: impl Display) -> Result<T, Failure> {
        self.map_err(|errno| Failure::new(what, io::Error::from(errno)))
    }
}

/// Runs a lesson's `main` body: on failure prints `program: failure` to
/// stderr and exits with status 1, so a shell (or a test) sees it failed.
pub fn run(
    program: &str,
    body: impl FnOnce() -> Result<(), Failure>,
) -> ExitCode {
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{program}: {failure}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_the_call_the_address_and_the_os_error() {
        let err: io::Result<()> = Err(io::Error::from_raw_os_error(98));
        let failure = err.or_fail("bind 127.0.0.1:8001").unwrap_err();
        assert_eq!(
            failure.to_string(),
            "bind 127.0.0.1:8001: Address already in use (os error 98)"
        );
    }
}
