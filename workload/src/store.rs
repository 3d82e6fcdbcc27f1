//! The store: one directory per run under `<root>/kafka/<timestamp>/`, and `<root>/latest`
//! pointing at the newest complete one, as Maelstrom lays out `store/`.
//!
//! A run directory is created first and published as `latest` only once its files are
//! written ([`publish`]), so a run killed half-way leaves `latest` on the previous complete
//! run rather than on a directory without results.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Creates a fresh run directory. `latest` is left alone until [`publish`].
pub fn new_run_dir(root: &Path) -> io::Result<PathBuf> {
    let kafka = root.join("kafka");
    std::fs::create_dir_all(&kafka)?;
    let stamp = timestamp(SystemTime::now());
    let mut name = stamp.clone();
    // Runs started in the same millisecond (parallel tests) get a suffix.
    let mut n = 1;
    let dir = loop {
        let dir = kafka.join(&name);
        match std::fs::create_dir(&dir) {
            Ok(()) => break dir,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                n += 1;
                name = format!("{stamp}-{n}");
            }
            Err(e) => return Err(e),
        }
    };
    Ok(dir)
}

/// Points `<root>/latest` at the run directory `dir` (made by [`new_run_dir`] under the
/// same root), once its results are complete.
///
/// The link is replaced atomically: a new link under a temporary name, renamed over the
/// old one, so a reader sees the old run or the new one, never a missing or partial link.
pub fn publish(root: &Path, dir: &Path) -> io::Result<()> {
    let name = dir
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{} has no name", dir.display())))?;
    // Relative, so the store can be moved or copied whole.
    let target = Path::new("kafka").join(name);
    // Relaxed: only makes temporary names unique within this process; orders nothing.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = root.join(format!(".latest-{}-{seq}", std::process::id()));
    // A link left by a killed process with a recycled pid would make symlink() fail.
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp)?;
    std::fs::rename(&tmp, root.join("latest")).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// `YYYYMMDDTHHMMSS.mmmZ` in UTC, like Maelstrom's run names but without a local zone.
pub fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{day:02}T{:02}{:02}{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc_timestamps() {
        let t = UNIX_EPOCH + Duration::from_millis(1_709_294_400_123);
        assert_eq!(timestamp(t), "20240301T120000.123Z");
        assert_eq!(timestamp(UNIX_EPOCH), "19700101T000000.000Z");
    }

    fn latest(root: &Path) -> PathBuf {
        std::fs::canonicalize(root.join("latest")).unwrap()
    }

    #[test]
    fn run_dirs_are_unique_and_latest_follows_completed_runs_only() {
        let root = std::env::temp_dir().join(format!("kw-store-test-{}", std::process::id()));
        let a = new_run_dir(&root).unwrap();
        // Not complete yet: no latest at all.
        assert!(std::fs::symlink_metadata(root.join("latest")).is_err());
        publish(&root, &a).unwrap();
        assert_eq!(latest(&root), std::fs::canonicalize(&a).unwrap());
        // A second run that is killed before it completes leaves latest on the first.
        let b = new_run_dir(&root).unwrap();
        assert_ne!(a, b);
        assert_eq!(latest(&root), std::fs::canonicalize(&a).unwrap());
        publish(&root, &b).unwrap();
        assert_eq!(latest(&root), std::fs::canonicalize(&b).unwrap());
        // The link is relative, and no temporary links are left behind.
        let target = std::fs::read_link(root.join("latest")).unwrap();
        assert!(target.is_relative(), "{}", target.display());
        let leftovers: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".latest"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        let _ = std::fs::remove_dir_all(&root);
    }
}
