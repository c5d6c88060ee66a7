//! Atomic file writes: unique temporary names, removal of stale temporaries left by killed
//! saves, fsync and rename into place (see the [module documentation](super)).

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use super::IoError;

/// How long a temporary checkpoint file may go unmodified before a later save of the same
/// checkpoint removes it whoever made it (when its process cannot be shown to be dead).
/// A live save writes continuously and renames right after its final flush, so its
/// temporary file is never this old.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(15 * 60);

/// Attempts made by this process so far (part of every temporary file name).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// File names of this process's temporary files that a save is still writing or renaming.
static IN_FLIGHT: Mutex<Vec<OsString>> = Mutex::new(Vec::new());

fn in_flight() -> MutexGuard<'static, Vec<OsString>> {
    IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Registers a temporary file name as in flight for as long as it lives.
struct InFlight(OsString);

impl InFlight {
    fn register(name: OsString) -> Self {
        in_flight().push(name.clone());
        InFlight(name)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut names = in_flight();
        if let Some(i) = names.iter().position(|n| *n == self.0) {
            names.swap_remove(i);
        }
    }
}

/// A fresh temporary file for [`write_atomic`] to write before renaming it to `path`:
/// `.<file name>.<pid>-<counter>-<nonce>.tmp` in the same folder (same file system, so the
/// rename is atomic), unique per attempt: the process-wide counter tells this process's
/// attempts apart, the random nonce those of an earlier process that had the same pid.
pub(crate) fn temp_path_for(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default();
    let counter = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nonce: u32 = rand::random();
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(format!(".{}-{counter}-{nonce:08x}.tmp", std::process::id()));
    path.with_file_name(temp)
}

/// The process id in `file`'s name if it is a temporary file of the checkpoint `name`:
/// `.<name>.<pid>-<counter>-<nonce>.tmp`, or `.<name>.<pid>.tmp` (the name before
/// temporary names were unique per attempt). `None` for any other file, including the
/// temporaries of other checkpoints (the part between `.<name>.` and `.tmp` has no dot).
fn temp_owner(name: &OsStr, file: &OsStr) -> Option<u32> {
    let file = file.as_encoded_bytes();
    let rest = file.strip_prefix(b".")?;
    let rest = rest.strip_prefix(name.as_encoded_bytes())?;
    let middle = rest.strip_prefix(b".")?.strip_suffix(b".tmp")?;
    let middle = std::str::from_utf8(middle).ok()?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let pid = match middle.split('-').collect::<Vec<_>>()[..] {
        [pid] => pid,
        [pid, counter, nonce]
            if digits(counter)
                && !nonce.is_empty()
                && nonce.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            pid
        }
        _ => return None,
    };
    if !digits(pid) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` is known to have exited. Only Linux can tell (through `/proc`);
/// elsewhere the answer is always `false`. A reused pid reads as alive, the safe side.
fn process_is_dead(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()
    } else {
        false
    }
}

/// Removes the stale temporary files of the checkpoint `path` (see [`write_atomic`]); best
/// effort, errors are ignored.
fn remove_stale_temps(path: &Path) {
    let Some(name) = path.file_name() else {
        return;
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let own = std::process::id();
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = temp_owner(name, &file) else {
            continue;
        };
        // `DirEntry::metadata` does not follow symbolic links: only plain files go.
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age >= STALE_TEMP_AGE);
        let stale = if pid == own {
            // Listed after it was registered, so a live save of this process is in the list.
            !in_flight().contains(&file)
        } else {
            process_is_dead(pid) || old
        };
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Writes `bytes` to `path` atomically: to a fresh temporary file in the same folder (see
/// [`temp_path_for`]), flushed to disk, renamed over `path`, then the folder flushed. On
/// error the temporary file is removed and whatever was at `path` is untouched; if the
/// process is killed, `path` holds the old or the new content, never a mix.
///
/// First it removes the stale temporary files of the same checkpoint (`.<name>.*.tmp` in
/// the same folder, in either naming scheme; other files, and other checkpoints'
/// temporaries, are never touched): those named with this process's id that no save of this
/// process is writing (a previous process with the same pid left them); those of a process
/// that has exited (Linux); and any unmodified for [`STALE_TEMP_AGE`]. A temporary file of
/// another live save on the same machine is therefore never removed. (Pids mean nothing
/// across machines or pid namespaces: with concurrent saves of one checkpoint from several
/// machines or containers sharing a folder, one may remove another's temporary file; that
/// save then fails with an error, and the checkpoint stays intact.)
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    write_atomic_impl(path, bytes, None)
}

/// [`write_atomic`], with a simulated failure after `fail_after` bytes (for tests of the
/// failure path).
fn write_atomic_impl(path: &Path, bytes: &[u8], fail_after: Option<usize>) -> Result<(), IoError> {
    if path.file_name().is_none() {
        return Err(IoError::Io {
            action: "write",
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
        });
    }
    remove_stale_temps(path);
    // `create_new`: never follow or clobber something already at the temporary path. A
    // collision needs the same pid, counter and 32-bit nonce; retry a few times all the same.
    let mut attempt = 0;
    let (temp, _registered, mut file) = loop {
        let temp = temp_path_for(path);
        let registered = InFlight::register(temp.file_name().unwrap_or_default().to_owned());
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => break (temp, registered, file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 8 => attempt += 1,
            Err(source) => {
                return Err(IoError::Io {
                    action: "create temporary file",
                    path: temp,
                    source,
                });
            }
        }
    };
    let written = (|| -> io::Result<()> {
        match fail_after {
            Some(n) => {
                file.write_all(&bytes[..n.min(bytes.len())])?;
                Err(io::Error::other(
                    "simulated failure in the middle of the write",
                ))
            }
            None => {
                file.write_all(bytes)?;
                file.sync_all()
            }
        }
    })();
    drop(file);
    if let Err(source) = written {
        let _ = fs::remove_file(&temp);
        return Err(IoError::Io {
            action: "write",
            path: temp,
            source,
        });
    }
    if let Err(source) = fs::rename(&temp, path) {
        let _ = fs::remove_file(&temp);
        return Err(IoError::Io {
            action: "rename into place",
            path: path.to_path_buf(),
            source,
        });
    }
    // Make the rename itself durable (best effort: not every platform can open a folder).
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use ndarray::array;
    use tapegrad_autograd::Param;

    use super::*;
    use crate::io::{save_weights, weights_to_bytes};

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tapegrad-io-unit-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_write_failing_midway_leaves_the_old_file_and_no_temporary() {
        let dir = temp_dir("midway");
        let path = dir.join("w.safetensors");
        let good = Param::new("w", array![1.0_f32, 2.0, 3.0].into_dyn());
        save_weights(&path, &[&good]).unwrap();
        let before = fs::read(&path).unwrap();

        let bad = Param::new("w", array![9.0_f32, 9.0, 9.0].into_dyn());
        let bytes = weights_to_bytes(&[&bad]).unwrap();
        let err = write_atomic_impl(&path, &bytes, Some(bytes.len() / 2)).unwrap_err();
        assert!(
            matches!(
                err,
                IoError::Io {
                    action: "write",
                    ..
                }
            ),
            "{err}"
        );

        assert_eq!(fs::read(&path).unwrap(), before);
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporary_names_are_unique_and_recognized_only_for_their_checkpoint() {
        let path = Path::new("dir/w.safetensors");
        let (a, b) = (temp_path_for(path), temp_path_for(path));
        assert_ne!(a, b);
        let name = OsStr::new("w.safetensors");
        let pid = std::process::id();
        assert_eq!(temp_owner(name, a.file_name().unwrap()), Some(pid));
        assert_eq!(
            temp_owner(name, OsStr::new(".w.safetensors.42.tmp")),
            Some(42)
        );
        for other in [
            ".w.safetensors.tmp",
            ".w.safetensors..tmp",
            ".w.safetensors.42-1.tmp",
            ".w.safetensors.42-1-xyz.tmp",
            ".w.safetensors.5.42-1-ab.tmp",
            ".w.safetensors.99999999999-1-ab.tmp",
            ".v.safetensors.42.tmp",
            "w.safetensors.42.tmp",
            ".w.safetensors.42.tmpx",
        ] {
            assert_eq!(temp_owner(name, OsStr::new(other)), None, "{other}");
        }
    }
}
