//! The `plsw` binary's library: command line, configuration and the demo-data generator.
//! `main.rs` only installs logging and calls [`cli::run`].

pub mod cli;
pub mod config;
pub mod generate;
