//! The command line: a thin shell over the library.

mod check;
mod export;
mod prune;
mod record;
mod remux;
mod serve;
mod upload;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "preroll",
    version,
    about = "Camera stream recorder: clips with pre-roll, written at box level"
)]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Recover clips a crash left unfinished: every `.partial` under the directories.
    Check(check::CheckArgs),
    /// Record a clip from a live source: `lookback` seconds before now plus `duration` after.
    Record(record::RecordArgs),
    /// Run the recorder service: every configured camera, the HTTP clip API and metrics.
    Serve(serve::ServeArgs),
    /// Keep pre-roll rings for sources without recording, reporting each camera's state.
    Watch(watch::WatchArgs),
    /// Join fMP4 segments (HLS directories or playlists, fragmented MP4 files) into one clip.
    Remux(remux::RemuxArgs),
    /// Write a camera's continuous recording between two times into one clip.
    Export(export::ExportArgs),
    /// Apply a config's retention limits once: delete the oldest clips past them.
    Prune(prune::PruneArgs),
    /// Copy files into the config's bucket, verified, as the service copies its clips.
    Upload(upload::UploadArgs),
}

pub fn main() -> ExitCode {
    crate::memory::configure();
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let result = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Remux(args) => remux::run(args),
        Command::Prune(args) => prune::run(args),
        Command::Export(args) => export::run(args),
        Command::Record(args) => runtime().and_then(|rt| rt.block_on(record::run(args))),
        Command::Serve(args) => runtime().and_then(|rt| rt.block_on(serve::run(args))),
        Command::Watch(args) => runtime().and_then(|rt| rt.block_on(watch::run(args))),
        Command::Upload(args) => runtime().and_then(|rt| rt.block_on(upload::run(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PREROLL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: a log file or journal gets plain text (and any escape
    // sequence in it is then not ours to explain).
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// "1.80 GB" style sizes (decimal units, as throughput is quoted in MB/s).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))
}
