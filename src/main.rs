use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = plsw::cli::Cli::parse();
    let malloc = if cli.tunes_malloc() {
        plsw::malloc::restart_tuned()
    } else {
        plsw::malloc::Malloc::Untouched
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("PLSW_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    plsw::malloc::log_state(&malloc);
    // The dependency tree enables both of rustls' crypto providers; with two, rustls cannot
    // pick one by itself and panics at the first TLS connection. Ours is ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(plsw::cli::run(cli));
    // Everything the command does is awaited by then; dropping the runtime would only wait for
    // its idle threads to wind down (5-8 ms at every command's end).
    runtime.shutdown_background();
    plsw::bench::report_peak_rss();
    plsw::cli::exit_status(result)
}
