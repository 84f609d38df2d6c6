//! `preroll upload --config FILE CLIP...`: copies files into the config's bucket
//! (`[storage.remote]`) as the service copies its clips: one `PUT` up to 8 MiB, 8 MiB parts
//! beyond, each verified by its size and MD5 before it counts. A file goes to
//! `clips/<node>/<name>`, its name taken as the service takes a clip's (its path under the
//! recordings directory, else `_/` and its absolute path). For clips made outside the
//! service (`preroll record`, `remux`, `export`), and for measuring uploads.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use crate::config::Config;
use crate::service::remote::{self, Keys};

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The config file whose `[storage.remote]` and `[node]` apply (credentials from the
    /// environment, as for `preroll serve`).
    #[arg(short, long)]
    config: PathBuf,
    /// The files to upload.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub async fn run(args: UploadArgs) -> anyhow::Result<()> {
    let config = Config::load_for_remote(&args.config)?;
    let settings = config.storage.remote.as_ref().with_context(|| {
        format!(
            "{}: no [storage.remote] to upload to",
            args.config.display()
        )
    })?;
    let store = remote::connect(settings)?;
    let keys = Keys::new(&settings.prefix, &config.node);
    let recordings = config
        .storage
        .recordings
        .canonicalize()
        .unwrap_or_else(|_| config.storage.recordings.clone());
    for path in &args.files {
        let path = path
            .canonicalize()
            .with_context(|| format!("{}", path.display()))?;
        let file = std::fs::File::open(&path).with_context(|| format!("{}", path.display()))?;
        let len = file.metadata()?.len();
        let key = keys.clip(&Keys::name(&recordings, &path));
        let started = Instant::now();
        let copy = remote::upload_file(&store, Arc::new(file), len, &key)
            .await
            .with_context(|| format!("{}", path.display()))?;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{} → s3://{}/{key}: {len} bytes in {seconds:.3} s ({:.1} MB/s), verified (MD5 {})",
            path.display(),
            settings.bucket,
            len as f64 / seconds.max(1e-9) / 1e6,
            copy.md5
        );
    }
    Ok(())
}
