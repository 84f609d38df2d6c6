//! A small real tmpfs for tests that fill a disk (mounting needs root, as CI runs).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for the test's life; unmounted on drop, also when the test fails.
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "this test mounts a tmpfs to fill it up, which needs root (CI runs as root); \
             run it as root instead of skipping it"
        );
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount -t tmpfs on {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            dir: dir.to_owned(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let umount = |lazy: bool| {
            let mut c = Command::new("umount");
            if lazy {
                c.arg("-l");
            }
            c.arg(&self.dir).status().is_ok_and(|s| s.success())
        };
        if !umount(false) && !umount(true) {
            eprintln!("could not unmount {}", self.dir.display());
        }
    }
}

/// Free bytes on the filesystem holding `dir`, as `statvfs` says.
pub fn free_bytes(dir: &Path) -> u64 {
    let s = rustix::fs::statvfs(dir).unwrap();
    s.f_bavail * s.f_frsize
}

/// Writes `bytes` bytes of filler to `path`.
pub fn fill(path: &Path, bytes: u64) {
    let mut f = fs::File::create(path).unwrap();
    let chunk = vec![0x55u8; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n])
            .unwrap_or_else(|e| panic!("filling {}: {e}", path.display()));
        left -= n as u64;
    }
}

/// Writes filler to `path` until the filesystem refuses with ENOSPC.
pub fn fill_up(path: &Path) {
    let mut f = fs::File::create(path).unwrap();
    let chunk = vec![0x55u8; 4096];
    loop {
        if let Err(e) = f.write_all(&chunk) {
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "filling up: {e}");
            return;
        }
    }
}
