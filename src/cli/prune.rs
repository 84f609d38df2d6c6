//! `preroll prune --config FILE`: one retention pass over the config's recordings directory,
//! as `preroll serve` runs them, printing each clip deleted and why. `--dry-run` only says
//! what would go. Safe beside a running service: clips in progress are `.partial` files,
//! which retention never looks at.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::config::Config;
use crate::recorder::Dir;
use crate::service::retention::{Retention, open_keep};

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The config file whose `[retention]` and cameras' `retention` limits apply.
    #[arg(short, long)]
    config: PathBuf,
    /// Only report what would be deleted; delete nothing.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: PruneArgs) -> anyhow::Result<()> {
    let config = Config::load_for_files(&args.config)?;
    // Canonical, as the service names clips (and their keep marks).
    let recordings = &config.storage.recordings.canonicalize().with_context(|| {
        format!(
            "recordings directory {}",
            config.storage.recordings.display()
        )
    })?;
    let root = Dir::root(recordings)
        .with_context(|| format!("recordings directory {}", recordings.display()))?;
    let (keep, suspended) = open_keep(recordings);
    let cameras = config
        .cameras
        .iter()
        .map(|c| (c.name.clone(), c.retention.clone()))
        .collect();
    let retention = Retention::new(config.retention.clone(), cameras, root, keep, suspended);
    if !retention.is_on() {
        println!(
            "no retention limit is set in {}: nothing to do",
            args.config.display()
        );
        return Ok(());
    }
    let report = retention
        .pass(&HashSet::new(), args.dry_run)
        .with_context(|| format!("retention pass over {}", recordings.display()))?;
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for d in &report.deleted {
        println!(
            "{verb} {} ({} bytes, {})",
            d.path.display(),
            d.bytes,
            d.reason.name()
        );
    }
    for f in &report.failed {
        println!("failed {f}");
    }
    for u in &report.unreadable {
        println!("passed over {u}");
    }
    let freed: u64 = report.deleted.iter().map(|d| d.bytes).sum();
    println!(
        "{} clip files, {} bytes; {verb} {} files, {freed} bytes; {:.3} s",
        report.files,
        report.bytes,
        report.deleted.len(),
        report.elapsed.as_secs_f64()
    );
    anyhow::ensure!(
        report.failed.is_empty(),
        "{} deletions failed",
        report.failed.len()
    );
    Ok(())
}
