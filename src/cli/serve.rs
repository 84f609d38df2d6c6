use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::config::{Config, MIN_TOKEN_LEN, TOKEN_ENV};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The config file (see preroll.example.toml). Without one, the `demo` camera is served
    /// on 127.0.0.1:8780 with clips under ./recordings.
    #[arg(short, long)]
    config: Option<PathBuf>,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::demo(demo_token()?),
    };
    crate::service::serve(config).await
}

/// The token of a config-less run: from the environment, or made up and logged (the API
/// listens on loopback only in this mode).
fn demo_token() -> anyhow::Result<String> {
    if let Ok(t) = std::env::var(TOKEN_ENV) {
        anyhow::ensure!(
            t.len() >= MIN_TOKEN_LEN,
            "{TOKEN_ENV} is {} characters; use at least {MIN_TOKEN_LEN}",
            t.len()
        );
        return Ok(t);
    }
    let mut bytes = [0u8; 16];
    let mut f = std::fs::File::open("/dev/urandom").context("opening /dev/urandom")?;
    std::io::Read::read_exact(&mut f, &mut bytes).context("reading /dev/urandom")?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    tracing::info!("no config and no {TOKEN_ENV}: the API token for this run is {token}");
    Ok(token)
}
