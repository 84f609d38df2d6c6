//! Where an API client may put a clip: under the recordings directory or another allowed
//! directory, and nowhere a `..` or a symlink would lead instead.

use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::recorder::{ClipPlace, Dir};

/// The allowed directories, resolved once at start (symlinks in their own paths are the
/// administrator's choice and are followed), and held open: every clip file below them is
/// reached through these handles without following a symlink (see `recorder::place`).
#[derive(Debug, Clone)]
pub struct AllowedDirs {
    /// Canonical recordings directory: relative filenames go here.
    pub recordings: PathBuf,
    /// Canonical extra directories (absolute filenames may point into them).
    pub others: Vec<PathBuf>,
    /// The recordings directory, then the others, open.
    handles: Vec<Dir>,
}

/// Why a requested filename was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRefused {
    /// Malformed (empty, NUL, a directory, the `.partial` suffix): a bad request.
    #[error("filename {0}")]
    Invalid(String),
    /// Breaks a confinement rule: forbidden.
    #[error("filename {name:?} refused: {rule}")]
    Forbidden { name: String, rule: &'static str },
}

pub const RULE_DOTDOT: &str = "'..' is not allowed in clip filenames";
pub const RULE_OUTSIDE: &str =
    "absolute filenames must lie inside the recordings directory or a storage.allowed directory";
pub const RULE_SYMLINK: &str =
    "the path leads out of the allowed directories through a symbolic link";
pub const RULE_OWN_FILES: &str = "the .preroll and continuous directories in the recordings \
     directory hold the service's own files and continuous recordings";

/// The longest name of one file or directory (Linux's NAME_MAX on every common file system).
pub const NAME_MAX: usize = 255;
/// The longest path the kernel takes (PATH_MAX less its terminating NUL).
pub const PATH_MAX: usize = 4095;
/// The longest filename a request may give (the OpenAPI document's `maxLength`).
pub const REQUEST_NAME_MAX: usize = 1024;

impl AllowedDirs {
    /// Creates the recordings directory if needed and resolves every directory.
    pub fn resolve(recordings: &Path, others: &[PathBuf]) -> io::Result<AllowedDirs> {
        std::fs::create_dir_all(recordings).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "creating recordings directory {}: {e}",
                    recordings.display()
                ),
            )
        })?;
        let canon = |p: &Path| {
            p.canonicalize().map_err(|e| {
                io::Error::new(e.kind(), format!("storage directory {}: {e}", p.display()))
            })
        };
        let recordings = canon(recordings)?;
        let others: Vec<PathBuf> = others.iter().map(|p| canon(p)).collect::<io::Result<_>>()?;
        let handles = std::iter::once(&recordings)
            .chain(&others)
            .map(|p| {
                Dir::root(p).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("opening storage directory {}: {e}", p.display()),
                    )
                })
            })
            .collect::<io::Result<_>>()?;
        Ok(AllowedDirs {
            recordings,
            others,
            handles,
        })
    }

    /// The open allowed directories, the recordings directory first.
    pub fn handles(&self) -> &[Dir] {
        &self.handles
    }

    /// The allowed directory `path` lies in (the deepest, when they nest) and the rest of
    /// the path below it.
    fn split<'p>(&self, path: &'p Path) -> Option<(&Dir, &'p Path)> {
        self.handles
            .iter()
            .filter_map(|d| path.strip_prefix(d.path()).ok().map(|rest| (d, rest)))
            .min_by_key(|(_, rest)| rest.components().count())
    }

    /// The place of a clip at `path` (as [`clip_path`](Self::clip_path) made it), its
    /// directories created below the allowed directory without following any symlink. A
    /// symlink met on the way (planted after the check) is an `InvalidInput` error.
    pub fn clip_place(&self, path: &Path) -> io::Result<ClipPlace> {
        let (root, rest) = self.split(path).ok_or_else(|| outside(path))?;
        ClipPlace::beneath(root, rest)
    }

    /// Opens a clip's file for reading, through the allowed directory's handle without
    /// following any symlink: a file replaced by a link (or under a directory replaced by
    /// one) is not opened.
    pub fn open_clip(&self, path: &Path) -> io::Result<File> {
        let (root, rest) = self.split(path).ok_or_else(|| outside(path))?;
        let name = rest.file_name().ok_or_else(|| outside(path))?;
        let dir = root.descend(rest.parent().unwrap_or(Path::new("")), false)?;
        dir.open_file(name, false)
    }

    /// Removes a clip's file through the allowed directory's handle without following any
    /// symlink (a link standing at its name is removed itself, never what it points to);
    /// `false` when nothing was there.
    pub fn remove_clip(&self, path: &Path) -> io::Result<bool> {
        let (root, rest) = self.split(path).ok_or_else(|| outside(path))?;
        let name = rest.file_name().ok_or_else(|| outside(path))?;
        let dir = match root.descend(rest.parent().unwrap_or(Path::new("")), false) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        match dir.remove(name) {
            Ok(()) => {
                dir.sync()?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &Path> {
        std::iter::once(self.recordings.as_path()).chain(self.others.iter().map(PathBuf::as_path))
    }

    fn contains(&self, path: &Path) -> bool {
        self.all().any(|d| path.starts_with(d))
    }

    /// The path a clip named `name` is written to. Relative names are under the recordings
    /// directory. The deepest part of the path that exists is resolved, so a symlink inside
    /// an allowed directory cannot lead the clip elsewhere; the missing rest is created as
    /// plain directories by the writer.
    pub fn clip_path(&self, name: &str) -> Result<PathBuf, PathRefused> {
        if name.is_empty() {
            return Err(PathRefused::Invalid("is empty".into()));
        }
        if name.len() > REQUEST_NAME_MAX {
            return Err(PathRefused::Invalid(format!(
                "is {} bytes; the limit is {REQUEST_NAME_MAX}",
                name.len()
            )));
        }
        if let Some((at, c)) = name.char_indices().find(|(_, c)| c.is_control()) {
            // Named by its code point only: the character itself would be the problem again
            // wherever the message is shown.
            return Err(PathRefused::Invalid(format!(
                "contains a control character (U+{:04X}) at byte {at}; clip names are plain text",
                u32::from(c)
            )));
        }
        if name.ends_with('/') {
            return Err(PathRefused::Invalid(format!(
                "{name:?} names a directory, not a file"
            )));
        }
        if name.ends_with(crate::recorder::PARTIAL_SUFFIX) {
            return Err(PathRefused::Invalid(format!(
                "{name:?} ends in {}, which is kept for clips being written",
                crate::recorder::PARTIAL_SUFFIX
            )));
        }
        let requested = Path::new(name);
        if requested.components().any(|c| c == Component::ParentDir) {
            return Err(forbidden(name, RULE_DOTDOT));
        }
        check_lengths(requested)?;
        let full = if requested.is_absolute() {
            requested.to_owned()
        } else {
            self.recordings.join(requested)
        };
        // `.` components are harmless; drop them so prefix checks compare like with like.
        let full: PathBuf = full
            .components()
            .filter(|c| *c != Component::CurDir)
            .collect();
        if !self.contains(&full) {
            return Err(forbidden(name, RULE_OUTSIDE));
        }
        let Some(file_name) = full.file_name().map(ToOwned::to_owned) else {
            return Err(PathRefused::Invalid(format!("{name:?} has no file name")));
        };
        // Resolve the deepest existing ancestor of the parent directory.
        let parent = full.parent().unwrap_or(&full);
        let mut existing = parent;
        let mut missing: Vec<&std::ffi::OsStr> = Vec::new();
        let resolved = loop {
            match existing.canonicalize() {
                Ok(p) => break p,
                Err(_) => match (existing.file_name(), existing.parent()) {
                    (Some(last), Some(up)) => {
                        missing.push(last);
                        existing = up;
                    }
                    _ => return Err(forbidden(name, RULE_OUTSIDE)),
                },
            }
        };
        if !self.contains(&resolved) {
            return Err(forbidden(name, RULE_SYMLINK));
        }
        let mut out = resolved;
        for part in missing.iter().rev() {
            out.push(part);
        }
        out.push(file_name);
        let whole = out.as_os_str().len() + crate::recorder::PARTIAL_SUFFIX.len();
        if whole > PATH_MAX {
            return Err(PathRefused::Invalid(format!(
                "makes a path of {whole} bytes while recording (with {}); the limit is \
                 {PATH_MAX}",
                crate::recorder::PARTIAL_SUFFIX
            )));
        }
        // A clip there could be overwritten by the clip history's rewrite.
        if out.starts_with(self.recordings.join(super::history::DIR))
            || out.starts_with(self.recordings.join(crate::continuous::DIR))
        {
            return Err(forbidden(name, RULE_OWN_FILES));
        }
        Ok(out)
    }
}

/// Each directory name at most [`NAME_MAX`] bytes, and the file name short enough to carry
/// the `.partial` suffix while the clip records.
fn check_lengths(requested: &Path) -> Result<(), PathRefused> {
    let suffix = crate::recorder::PARTIAL_SUFFIX.len();
    let parts: Vec<_> = requested.components().collect();
    for (i, part) in parts.iter().enumerate() {
        let Component::Normal(part) = part else {
            continue;
        };
        let last = i + 1 == parts.len();
        let limit = if last { NAME_MAX - suffix } else { NAME_MAX };
        let len = part.len();
        if len > limit {
            let what = if last {
                format!(
                    "the file name is {len} bytes; the limit is {limit} (255 with the {} suffix \
                     it has while recording)",
                    crate::recorder::PARTIAL_SUFFIX
                )
            } else {
                format!("a directory name is {len} bytes; the limit is {NAME_MAX}")
            };
            return Err(PathRefused::Invalid(what));
        }
    }
    Ok(())
}

fn outside(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} is not a file under an allowed directory",
            path.display()
        ),
    )
}

fn forbidden(name: &str, rule: &'static str) -> PathRefused {
    PathRefused::Forbidden {
        name: name.to_owned(),
        rule,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs() -> (tempfile::TempDir, AllowedDirs) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let rec = tmp.path().join("rec");
        let other = tmp.path().join("other");
        std::fs::create_dir_all(&other).expect("mkdir");
        std::fs::create_dir_all(tmp.path().join("outside")).expect("mkdir");
        let d = AllowedDirs::resolve(&rec, &[other]).expect("resolve");
        (tmp, d)
    }

    fn assert_forbidden(d: &AllowedDirs, name: &str, rule: &str) {
        match d.clip_path(name) {
            Err(PathRefused::Forbidden { rule: r, .. }) if r == rule => {}
            other => panic!("{name:?}: expected refusal by {rule:?}, got {other:?}"),
        }
    }

    #[test]
    fn the_services_own_directory_is_refused() {
        let (_t, d) = dirs();
        let inside = d.recordings.join(".preroll/clips.jsonl.tmp");
        for name in [
            ".preroll/clips.jsonl.tmp",
            "./.preroll/x.mp4",
            "continuous/front/2026-11-30/081530.000Z.mp4",
            inside.to_str().expect("utf8"),
        ] {
            assert_forbidden(&d, name, RULE_OWN_FILES);
        }
        // Only that directory: other dot-names are clips like any.
        let p = d.clip_path(".preroll-old/a.mp4").expect("ok");
        assert_eq!(p, d.recordings.join(".preroll-old/a.mp4"));
    }

    #[test]
    fn relative_names_go_under_recordings() {
        let (_t, d) = dirs();
        let p = d.clip_path("front/a.mp4").expect("ok");
        assert_eq!(p, d.recordings.join("front/a.mp4"));
        let p = d.clip_path("./b.mp4").expect("ok");
        assert_eq!(p, d.recordings.join("b.mp4"));
    }

    #[test]
    fn absolute_names_only_inside_allowed_dirs() {
        let (t, d) = dirs();
        let inside = d.others[0].join("x/y.mp4");
        assert_eq!(
            d.clip_path(inside.to_str().expect("utf8")).expect("ok"),
            inside
        );
        let outside = t.path().join("outside/y.mp4");
        assert_forbidden(&d, outside.to_str().expect("utf8"), RULE_OUTSIDE);
        assert_forbidden(&d, "/etc/passwd", RULE_OUTSIDE);
    }

    #[test]
    fn dotdot_and_symlinks_out_are_refused() {
        let (t, d) = dirs();
        assert_forbidden(&d, "../outside/x.mp4", RULE_DOTDOT);
        assert_forbidden(&d, "a/../../x.mp4", RULE_DOTDOT);
        std::os::unix::fs::symlink(t.path().join("outside"), d.recordings.join("link"))
            .expect("symlink");
        assert_forbidden(&d, "link/x.mp4", RULE_SYMLINK);
        assert_forbidden(&d, "link/new/deeper/x.mp4", RULE_SYMLINK);
        // A symlink that stays inside is fine.
        std::os::unix::fs::symlink(&d.others[0], d.recordings.join("to-other")).expect("symlink");
        assert_eq!(
            d.clip_path("to-other/x.mp4").expect("ok"),
            d.others[0].join("x.mp4")
        );
    }

    #[test]
    fn malformed_names_are_bad_requests() {
        let (_t, d) = dirs();
        for name in ["", "a\0b.mp4", "dir/", "clip.mp4.partial"] {
            let e = d.clip_path(name).expect_err(name);
            assert!(matches!(e, PathRefused::Invalid(_)), "{name:?}: {e}");
        }
    }

    #[test]
    fn control_characters_are_refused_and_not_echoed() {
        let (_t, d) = dirs();
        for name in [
            "x\r\nInjected: yes.mp4",
            "a\u{1b}[31mred.mp4",
            "tab\there.mp4",
            "c1\u{85}.mp4",
        ] {
            let e = d.clip_path(name).expect_err(name).to_string();
            assert!(e.contains("control character (U+"), "{name:?}: {e}");
            assert!(
                !e.chars().any(char::is_control),
                "{name:?}: the message carries it: {e:?}"
            );
        }
        // Other characters are names like any.
        assert!(d.clip_path("été/кадр 1.mp4").is_ok());
    }

    #[test]
    fn lengths_are_checked_per_component_with_the_partial_suffix() {
        let (_t, d) = dirs();
        let suffix = crate::recorder::PARTIAL_SUFFIX.len();
        let longest = "a".repeat(NAME_MAX - suffix);
        assert!(d.clip_path(&longest).is_ok());
        let e = d
            .clip_path(&format!("{longest}b"))
            .expect_err("one byte more");
        assert!(
            matches!(&e, PathRefused::Invalid(m) if m.contains("the limit is 247")),
            "{e}"
        );
        let dir = "d".repeat(NAME_MAX);
        assert!(d.clip_path(&format!("{dir}/x.mp4")).is_ok());
        let e = d
            .clip_path(&format!("{dir}d/x.mp4"))
            .expect_err("directory too long");
        assert!(
            matches!(&e, PathRefused::Invalid(m) if m.contains("directory name")),
            "{e}"
        );
        let long = vec!["d".repeat(200); 6].join("/") + "/x.mp4";
        let e = d.clip_path(&long).expect_err("name too long");
        assert!(
            matches!(&e, PathRefused::Invalid(m) if m.contains("1024")),
            "{e}"
        );
        // The whole path counts too: a recordings directory deep enough leaves less room.
        let t = tempfile::tempdir().expect("tempdir");
        let deep_dir = t.path().join(vec!["d".repeat(250); 14].join("/"));
        let deep = AllowedDirs::resolve(&deep_dir, &[]).expect("resolve");
        let name = vec!["e".repeat(240); 3].join("/");
        let e = deep.clip_path(&name).expect_err("path too long");
        assert!(
            matches!(&e, PathRefused::Invalid(m) if m.contains("4095")),
            "{e}"
        );
    }
}
