//! Error kinds that decide the process exit code.
//!
//! Everything in basis returns `anyhow::Result`. Errors caused by the user's input (a data file,
//! a config value, a command-line argument) are raised as [`InputError`] so that `main` can exit
//! with code 2 and print the message as it stands; anything else is an internal error (code 1).

use std::fmt;

/// A problem with the user's data, config or arguments: the message says what was expected,
/// what was found, where, and what to do.
#[derive(Debug)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// Build an [`InputError`] wrapped in `anyhow::Error`, with `format!` syntax.
#[macro_export]
macro_rules! input_error {
    ($($arg:tt)*) => {
        anyhow::Error::new($crate::error::InputError(format!($($arg)*)))
    };
}

/// Return early with an [`InputError`], with `format!` syntax.
#[macro_export]
macro_rules! bail_input {
    ($($arg:tt)*) => {
        return Err($crate::input_error!($($arg)*))
    };
}

/// Whether any error in the chain is an [`InputError`] (exit code 2).
pub fn is_input_error(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.downcast_ref::<InputError>().is_some())
}
