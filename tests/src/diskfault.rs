//! Disk faults under a coordinator node, for the cluster fault runs: a full disk (the
//! node's data folder is a small tmpfs of its own, filled up by a file beside the node's)
//! and failing fsyncs (the node preloads the `fsync-fault` library, tests/fsync-fault,
//! which fails every fsync while a flag file exists).
//!
//! A full disk needs the right to mount (root, as the fault runs have here); where a
//! mount is refused the folder stays on the test's own disk and [`NodeDisk::fill`] says
//! why it cannot strike.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The size of each node's own disk: a few times what a fault run's Raft store takes.
const SMALL_DISK: &str = "size=64m";

/// The environment variable the `fsync-fault` library reads: the flag file's path.
const FSYNC_FLAG_VAR: &str = "ACCELBENCH_FAIL_FSYNC_WHILE";

/// One node's data folder and the switches of its disk faults.
pub struct NodeDisk {
    dir: PathBuf,
    /// Why the folder is not a small disk of its own (the mount's error), if it is not.
    not_mounted: Option<String>,
    fsync_flag: PathBuf,
    preload: PathBuf,
}

impl NodeDisk {
    /// Creates `dir` and mounts a small tmpfs on it, if allowed; the node's fsyncs fail
    /// while `{dir}.fsync-fails` exists.
    pub fn prepare(dir: &Path) -> NodeDisk {
        std::fs::create_dir_all(dir).expect("node data folder");
        let mount = Command::new("mount").args(["-t", "tmpfs", "-o", SMALL_DISK, "tmpfs"]).arg(dir).output();
        let not_mounted = match mount {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(String::from_utf8_lossy(&o.stderr).trim().to_string()),
            Err(e) => Some(format!("mount: {e}")),
        };
        let preload = crate::binary("libfsync_fault.so");
        NodeDisk { dir: dir.to_path_buf(), not_mounted, fsync_flag: dir.with_extension("fsync-fails"), preload }
    }

    /// What the node's process needs in its environment for the fsync fault.
    pub fn env(&self) -> [(String, String); 2] {
        [
            ("LD_PRELOAD".into(), self.preload.display().to_string()),
            (FSYNC_FLAG_VAR.into(), self.fsync_flag.display().to_string()),
        ]
    }

    /// Every fsync of the node fails (`true`) or works again (`false`).
    pub fn fail_fsync(&self, failing: bool) {
        if failing {
            std::fs::write(&self.fsync_flag, b"").expect("fsync fault flag");
        } else {
            let _ = std::fs::remove_file(&self.fsync_flag);
        }
    }

    fn filler(&self) -> PathBuf {
        self.dir.join("filler")
    }

    /// Fills the node's disk to the last byte; `Err` (why) when it has none of its own.
    pub fn fill(&self) -> Result<(), String> {
        if let Some(why) = &self.not_mounted {
            return Err(format!("no small disk of its own: {why}"));
        }
        let mut file = std::fs::File::create(self.filler()).map_err(|e| format!("filler: {e}"))?;
        let chunk = vec![0u8; 1 << 20];
        loop {
            match file.write(&chunk) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => return Ok(()),
                Err(e) => return Err(format!("filling the disk: {e}")),
            }
        }
    }

    /// Frees what [`Self::fill`] took.
    pub fn free(&self) {
        let _ = std::fs::remove_file(self.filler());
    }
}

impl Drop for NodeDisk {
    fn drop(&mut self) {
        self.fail_fsync(false);
        if self.not_mounted.is_none() {
            // Lazy: a process of the run that still holds a file there does not keep the
            // mount (the test's folder is removed right after).
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dd conv=fsync` of one byte into `dir`, under the node's environment.
    fn dd_with_fsync(disk: &NodeDisk, dir: &Path) -> std::process::Output {
        Command::new("dd")
            .args(["if=/dev/zero", "bs=1", "count=1", "conv=fsync"])
            .arg(format!("of={}", dir.join("probe").display()))
            .envs(disk.env())
            .output()
            .expect("dd runs")
    }

    #[test]
    fn fsyncs_fail_while_the_flag_is_up_and_a_full_disk_refuses_writes() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("node-1");
        let disk = NodeDisk::prepare(&dir);
        assert!(dd_with_fsync(&disk, &dir).status.success(), "fsync works before the fault");
        disk.fail_fsync(true);
        let failed = dd_with_fsync(&disk, &dir);
        let said = String::from_utf8_lossy(&failed.stderr);
        assert!(!failed.status.success() && said.contains("Input/output error"), "{said}");
        disk.fail_fsync(false);
        assert!(dd_with_fsync(&disk, &dir).status.success(), "fsync works after the heal");

        match disk.fill() {
            Ok(()) => {
                let full = std::fs::write(dir.join("more"), vec![1u8; 1 << 16]).expect_err("the disk is full");
                assert_eq!(full.kind(), std::io::ErrorKind::StorageFull, "{full}");
                disk.free();
                std::fs::write(dir.join("more"), vec![1u8; 1 << 16]).expect("room again after the heal");
            }
            // Not allowed to mount here: the fault runs report the fault as skipped.
            Err(why) => eprintln!("full disk not tried: {why}"),
        }
        drop(disk);
    }
}
