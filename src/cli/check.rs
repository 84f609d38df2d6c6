//! `preroll check DIR...`: recover the clips a crash left unfinished.

use std::path::PathBuf;

use clap::Args;

use crate::recorder::{RecoverError, find_partials, inspect, recover};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Directories searched (recursively, not following symlinks) for `.partial` files; a
    /// `.partial` file may be named directly too.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Only report what would be done; change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Default)]
struct Counts {
    recovered: usize,
    removed: usize,
    skipped: usize,
    failed: usize,
}

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let mut counts = Counts::default();
    let mut partials = Vec::new();
    for path in &args.paths {
        let is_file = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file());
        if is_file {
            partials.push(path.clone());
            continue;
        }
        match find_partials(path) {
            Ok(found) => partials.extend(found),
            Err(e) => {
                println!("failed {}: {e}", path.display());
                counts.failed += 1;
            }
        }
    }
    partials.sort();
    partials.dedup();

    for partial in &partials {
        let result = if args.dry_run {
            inspect(partial).map(|plan| {
                format!(
                    "would recover {} as {}: {:.3} s, {} fragments, {} bytes kept, {} bytes cut{}",
                    plan.partial.display(),
                    plan.path.display(),
                    plan.duration.as_secs_f64(),
                    plan.fragments,
                    plan.keep,
                    plan.cut_bytes,
                    reason(plan.damage.as_deref())
                )
            })
        } else {
            recover(partial).map(|r| {
                format!(
                    "recovered {}: {:.3} s, {}, {} fragments, {} bytes cut{}",
                    r.summary.path.display(),
                    r.summary.duration.as_secs_f64(),
                    super::human_bytes(r.summary.bytes),
                    r.summary.fragments,
                    r.cut_bytes,
                    reason(r.damage.as_deref())
                )
            })
        };
        match result {
            Ok(line) => {
                println!("{line}");
                counts.recovered += 1;
            }
            Err(RecoverError::Empty {
                partial,
                bytes,
                why,
                removed,
            }) => {
                let verb = if removed { "removed" } else { "would remove" };
                println!(
                    "{verb} {}: no complete fragment, {bytes} bytes ({why})",
                    partial.display()
                );
                counts.removed += 1;
            }
            Err(e) if e.is_skip() => {
                println!("skipped {e}");
                counts.skipped += 1;
            }
            Err(e) => {
                println!("failed {e}");
                counts.failed += 1;
            }
        }
    }

    let Counts {
        recovered,
        removed,
        skipped,
        failed,
    } = counts;
    if args.dry_run {
        println!(
            "{} partial files (dry run): {recovered} to recover, {removed} to remove, {skipped} skipped, {failed} failed",
            partials.len()
        );
    } else {
        println!(
            "{} partial files: {recovered} recovered, {removed} removed, {skipped} skipped, {failed} failed",
            partials.len()
        );
    }
    if failed > 0 {
        anyhow::bail!("{failed} could not be recovered (see above)");
    }
    Ok(())
}

fn reason(damage: Option<&str>) -> String {
    damage.map_or(String::new(), |d| format!(" ({d})"))
}
