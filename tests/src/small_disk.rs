//! A small file system of its own (a tmpfs of a few MiB), filled up and freed on demand, for
//! tests of a disk that runs full. Mounting needs root, as the CI runs.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a temporary directory, unmounted when dropped.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// A new file system of `bytes` bytes.
    ///
    /// # Panics
    /// If it cannot be mounted (not root).
    pub fn mount(bytes: u64) -> Self {
        let dir = tempfile::tempdir().expect("a mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0700"))
            .arg("tollgate-small-disk")
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "cannot mount a {bytes}-byte tmpfs on {}: tests of a full disk run as root",
            dir.path().display()
        );
        Self { dir }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The bytes free now.
    pub fn free_bytes(&self) -> u64 {
        let output = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(self.path())
            .output()
            .expect("run df");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .and_then(|line| line.trim().parse().ok())
            .expect("df's free bytes")
    }

    /// Takes every free byte but `leave` (rounded to whole 4 KiB pages) with a filler file.
    pub fn fill(&self, leave: u64) {
        let mut filler = File::options()
            .create(true)
            .append(true)
            .open(self.filler())
            .expect("the filler file");
        let chunk = vec![0u8; 1 << 20];
        let mut left = self.free_bytes().saturating_sub(leave);
        while left > 0 {
            let size = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
            match filler.write_all(&chunk[..size]) {
                Ok(()) => left -= size as u64,
                Err(error) if error.kind() == ErrorKind::StorageFull => break,
                Err(error) => panic!("filling the disk: {error}"),
            }
        }
        filler.sync_all().ok();
    }

    /// Gives back what [`SmallDisk::fill`] took.
    pub fn free(&self) {
        std::fs::remove_file(self.filler()).expect("remove the filler file");
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a process that still holds a file in it lets go when it ends.
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}
