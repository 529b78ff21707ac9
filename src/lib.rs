//! The `plsw` binary's library: command line, configuration, the demo-data generator and the
//! work-order API stand-in.
//! `main.rs` only tunes malloc ([`malloc`]), installs logging and calls [`cli::run`].

pub mod bench;
pub mod cli;
pub mod config;
pub mod generate;
pub mod malloc;
pub mod upstream;
