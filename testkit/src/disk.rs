//! File systems made for a test, for what a power cut or a full disk
//! leaves: ext4 on a loop device, and copies of the device's backing file
//! (what reached the device, without the page cache of the file system
//! mounted on it) mounted in turn ([`Mounted`]); a size-limited tmpfs
//! ([`Tmpfs`]). Needs root (and `losetup`, `mkfs.ext4` for a loop device);
//! the constructors say what is missing. Every mount and loop device made
//! here is unmounted and detached on drop, also when a test fails.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs a command; its stdout, or why it failed.
pub fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A backing file attached to a loop device and mounted as ext4.
pub struct Mounted {
    /// The backing file.
    pub image: PathBuf,
    /// Where the file system is mounted.
    pub mount: PathBuf,
    device: String,
    mounted: bool,
}

impl Mounted {
    /// Makes a fresh ext4 image of `bytes` in `work` and mounts it;
    /// `Err` says which capability is missing (root, a loop device, a
    /// tool).
    pub fn fresh(work: &Path, bytes: u64) -> Result<Mounted, String> {
        let image = work.join("image-0");
        let f = std::fs::File::create(&image).map_err(|e| format!("create image: {e}"))?;
        f.set_len(bytes).map_err(|e| format!("size image: {e}"))?;
        drop(f);
        let image_s = image.to_str().ok_or("image path is not UTF-8")?;
        run("mkfs.ext4", &["-q", "-F", image_s])?;
        Mounted::new(&image, &work.join("mnt-0"))
    }

    /// Attaches `image` to a free loop device and mounts it on `mount`
    /// (ext4 replays its journal here, as after a power cut).
    ///
    /// Mounted with `commit=600`: while the writer is frozen, no periodic
    /// journal commit runs as the copy is taken, so the copy is one state
    /// of the device (syncs still commit at once).
    pub fn new(image: &Path, mount: &Path) -> Result<Mounted, String> {
        let image_s = image.to_str().ok_or("image path is not UTF-8")?;
        let device = run("losetup", &["-f", "--show", image_s])?;
        let mut m = Mounted {
            image: image.to_path_buf(),
            mount: mount.to_path_buf(),
            device,
            mounted: false,
        };
        std::fs::create_dir_all(mount).map_err(|e| format!("mkdir {}: {e}", mount.display()))?;
        let mount_s = mount.to_str().ok_or("mount path is not UTF-8")?;
        run(
            "mount",
            &["-t", "ext4", "-o", "commit=600", &m.device, mount_s],
        )?;
        m.mounted = true;
        Ok(m)
    }

    /// After a power cut taken as `copy` (a copy of [`Mounted::image`]
    /// made while every writer was frozen): unmounts and detaches this one,
    /// deletes its image, and mounts the copy on `mount`: the disk after
    /// the cut.
    pub fn replace_with(self, copy: &Path, mount: &Path) -> Result<Mounted, String> {
        let old = self.image.clone();
        drop(self);
        let _ = std::fs::remove_file(&old);
        Mounted::new(copy, mount)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.mounted {
            let m = self.mount.to_string_lossy().into_owned();
            if run("umount", &[&m]).is_err() {
                let _ = run("umount", &["-l", &m]);
            }
        }
        let _ = run("losetup", &["-d", &self.device]);
    }
}

/// The first mount of a power-loss test, or `None` after saying why it is
/// skipped: it needs root and a loop device. Under CI (`CI=true`), which
/// has both, their absence is a failure.
pub fn fresh_or_skip(work: &Path, bytes: u64) -> Option<Mounted> {
    match Mounted::fresh(work, bytes) {
        Ok(m) => Some(m),
        Err(why) => {
            crate::missing_tool(&format!(
                "power-loss test: needs root and a loop device ({why})"
            ));
            None
        }
    }
}

/// A size-limited tmpfs mounted on a directory of its own; unmounted on
/// drop, also when a test fails.
pub struct Tmpfs {
    /// Where it is mounted.
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=`, e.g. `4m`); `Err` says
    /// why not (root is needed).
    pub fn new(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let at = dir.path().to_str().ok_or("temp path is not UTF-8")?;
        run(
            "mount",
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", at],
        )?;
        Ok(Tmpfs {
            path: dir.path().to_path_buf(),
            _dir: dir,
        })
    }

    /// [`Tmpfs::new`], or `None` after saying why the test is skipped
    /// (a failure under CI).
    pub fn or_skip(size: &str) -> Option<Tmpfs> {
        Tmpfs::new(size)
            .map_err(|why| crate::missing_tool(&format!("needs root to mount a tmpfs ({why})")))
            .ok()
    }

    /// Fills what space is left with a file named `name`, synced; returns
    /// its path (remove it to give the space back).
    pub fn fill(&self, name: &str) -> PathBuf {
        use std::io::Write;
        let path = self.path.join(name);
        let mut f = std::fs::File::create(&path).expect("create the filler");
        let chunk = vec![0xAAu8; 64 << 10];
        while f.write_all(&chunk).is_ok() {}
        // The last partial chunk, byte by byte at most a page.
        while f.write_all(&chunk[..512]).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let p = self.path.to_string_lossy().into_owned();
        if run("umount", &[&p]).is_err() {
            let _ = run("umount", &["-l", &p]);
        }
    }
}

/// A power-loss test's disk and clock: `POWERLOSS_CYCLES` (default 3), a
/// fresh ext4 of `bytes` in a work directory, the random moments of the
/// cuts (their seed printed with the test's name, to repeat a run), and
/// the cut itself: the device copied while every writer is frozen, then
/// the copy mounted in its place.
pub struct PowerLoss {
    pub cycles: u64,
    pub rng: Rng,
    pub seed: u64,
    disk: Option<Mounted>,
    /// Holds the images and mounts; dropped after the disk (field order).
    work: tempfile::TempDir,
}

impl PowerLoss {
    /// `None` when the test is skipped (see [`fresh_or_skip`]).
    pub fn setup(name: &str, bytes: u64) -> Option<PowerLoss> {
        let cycles = std::env::var("POWERLOSS_CYCLES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3);
        let work = tempfile::tempdir().expect("tempdir");
        let disk = fresh_or_skip(work.path(), bytes)?;
        let rng = Rng::from_clock();
        let seed = rng.0;
        println!("{name}: {cycles} cycles, seed {seed}");
        Some(PowerLoss {
            cycles,
            rng,
            seed,
            disk: Some(disk),
            work,
        })
    }

    /// The store's directory on the current disk.
    pub fn store(&self) -> PathBuf {
        self.disk.as_ref().expect("a disk").mount.join("store")
    }

    /// The power cut of `cycle`: copies what reached the device. Call it
    /// with every writer frozen.
    pub fn copy_device(&self, cycle: u64) {
        let image = &self.disk.as_ref().expect("a disk").image;
        std::fs::copy(image, self.copy_of(cycle)).expect("copy the device");
    }

    /// The disk after the cut of `cycle`: its copy, mounted (the journal
    /// replays) in place of the old device, which goes.
    pub fn mount_copy(&mut self, cycle: u64) {
        let old = self.disk.take().expect("a disk");
        let mount = self.work.path().join(format!("mnt-{cycle}"));
        self.disk = Some(
            old.replace_with(&self.copy_of(cycle), &mount)
                .expect("mount the copy"),
        );
    }

    fn copy_of(&self, cycle: u64) -> PathBuf {
        self.work.path().join(format!("image-{cycle}"))
    }
}

/// xorshift64*, seeded from the clock (printed, to repeat a run): the
/// random moments of the cuts.
pub struct Rng(pub u64);

impl Rng {
    /// Seeded from the clock.
    pub fn from_clock() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
        Rng(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}
