//! The store: one directory per run under `<root>/kafka/<timestamp>/`, and `<root>/latest`
//! pointing at the newest, as Maelstrom lays out `store/`.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Creates a fresh run directory and points `<root>/latest` at it.
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
    link_latest(root, &Path::new("kafka").join(&name))?;
    Ok(dir)
}

/// Replaces the `latest` symlink atomically: a new link under a temporary name, renamed.
fn link_latest(root: &Path, target: &Path) -> io::Result<()> {
    let tmp = root.join(format!(".latest-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, root.join("latest"))
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

    #[test]
    fn run_dirs_are_unique_and_latest_follows() {
        let root = std::env::temp_dir().join(format!("kw-store-test-{}", std::process::id()));
        let a = new_run_dir(&root).unwrap();
        let b = new_run_dir(&root).unwrap();
        assert_ne!(a, b);
        assert_eq!(
            std::fs::canonicalize(root.join("latest")).unwrap(),
            std::fs::canonicalize(&b).unwrap()
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
