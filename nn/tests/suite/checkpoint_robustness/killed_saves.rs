//! Saves killed at any moment leave the old or the new checkpoint; temporary files of
//! killed saves neither pile up nor block later saves.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad_autograd::Param;
use tapegrad_nn::io::{read_weights, save_weights};

use super::{params, scratch_dir};

/// The temporary files in `dir` (any `.*.tmp`).
fn temporaries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.ends_with(".tmp"))
        .collect();
    names.sort();
    names
}

/// The id of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--list")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn leftovers_of_killed_saves_never_block_a_save_and_are_cleaned() {
    let dir = scratch_dir("leftovers");
    let path = dir.join("w.safetensors");
    let pid = std::process::id();
    let dead = dead_pid();
    let day_ago = SystemTime::now() - Duration::from_secs(24 * 3600);
    let linux = cfg!(target_os = "linux");

    // Stale: (file name, mtime set to a day ago).
    let mut stale = vec![
        (format!(".w.safetensors.{pid}.tmp"), false), // the old naming, same pid
        (format!(".w.safetensors.{pid}-0-deadbeef.tmp"), false),
        (
            format!(".w.safetensors.{pid}-18446744073709551615-0.tmp"),
            false,
        ),
        (format!(".w.safetensors.{}-7-00c0ffee.tmp", u32::MAX), true), // old
    ];
    if linux {
        stale.push((format!(".w.safetensors.{dead}.tmp"), false));
        stale.push((format!(".w.safetensors.{dead}-3-abcdef01.tmp"), false));
    }
    // Kept: other checkpoints' temporaries, other files, fresh ones of live processes.
    let mut kept = vec![
        format!(".other.safetensors.{pid}.tmp"),
        format!(".w.safetensors.5.{pid}-1-0abc.tmp"), // checkpoint `w.safetensors.5`
        ".w.safetensors.backup.tmp".to_string(),
        format!(".w.safetensors.{pid}-x-1.tmp"),
        format!("w.safetensors.{pid}.tmp"),
    ];
    if linux {
        kept.push(".w.safetensors.1-2-3.tmp".to_string()); // pid 1 is alive
    }
    for (name, old) in &stale {
        fs::write(dir.join(name), b"half a checkpoint").unwrap();
        if *old {
            let f = fs::File::options()
                .write(true)
                .open(dir.join(name))
                .unwrap();
            f.set_modified(day_ago).unwrap();
        }
    }
    for name in &kept {
        fs::write(dir.join(name), b"not ours").unwrap();
    }
    let as_dir = format!(".w.safetensors.{dead}-1-1.tmp");
    fs::create_dir(dir.join(&as_dir)).unwrap();

    let p = Param::new("w", ArrayD::<f32>::ones(IxDyn(&[3])));
    save_weights(&path, &[&p]).unwrap();
    save_weights(&path, &[&p]).unwrap();
    assert_eq!(read_weights::<f32>(&path).unwrap()["w"], *p.value());
    for (name, _) in &stale {
        assert!(!dir.join(name).exists(), "{name} was not cleaned");
    }
    for name in &kept {
        assert!(dir.join(name).exists(), "{name} was removed");
    }
    assert!(dir.join(&as_dir).is_dir());
    fs::remove_dir_all(&dir).unwrap();
}

/// Set in the child process of the kill test: the checkpoint it saves to in a loop.
const KILL_CHILD_ENV: &str = "TAPEGRAD_KILL_CHILD";

/// The two states the kill test's child alternates between (about 1 MB each).
fn kill_state(which: u64) -> Vec<Param<f32>> {
    params::<f32>(
        &[("big", vec![512, 512]), ("small", vec![7]), ("one", vec![])],
        which,
    )
}

/// This test's full name as the test harness knows it (with the module path, once the
/// file is a module of a larger test binary).
fn full_test_name(name: &str) -> String {
    match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::{name}"),
        None => name.to_string(),
    }
}

/// The child of the kill test: saves states A and B in turn, forever. Without
/// `TAPEGRAD_KILL_CHILD`, does nothing.
#[test]
fn kill_test_child_saves_a_and_b_in_a_loop() {
    let Some(path) = std::env::var_os(KILL_CHILD_ENV) else {
        return;
    };
    let path = PathBuf::from(path);
    let (a, b) = (kill_state(0), kill_state(1));
    let (a, b): (Vec<_>, Vec<_>) = (a.iter().collect(), b.iter().collect());
    save_weights(&path, &a).unwrap();
    // Tells the parent that the first save is done.
    fs::write(
        path.with_extension(format!("ready-{}", std::process::id())),
        b"",
    )
    .unwrap();
    loop {
        save_weights(&path, &b).unwrap();
        save_weights(&path, &a).unwrap();
    }
}

#[test]
fn a_save_killed_at_any_moment_leaves_a_or_b_and_no_pile_of_temporaries() {
    let start = Instant::now();
    let dir = scratch_dir("kill");
    let path = dir.join("ckpt.safetensors");
    let (a, b) = (kill_state(0), kill_state(1));
    let values = |ps: &[Param<f32>]| -> BTreeMap<String, ArrayD<f32>> {
        ps.iter()
            .map(|p| (p.name().to_string(), p.value().clone()))
            .collect()
    };
    let (a_values, b_values) = (values(&a), values(&b));
    save_weights(&path, &a.iter().collect::<Vec<_>>()).unwrap();

    let exe = std::env::current_exe().unwrap();
    let child_name = full_test_name("kill_test_child_saves_a_and_b_in_a_loop");
    let mut rng = StdRng::seed_from_u64(0x4b11);
    let (mut kills, mut saw_a, mut saw_b, mut left_temp, mut max_temps) = (0, 0, 0, 0, 0);
    while kills < 60 {
        let mut child = Command::new(&exe)
            .args(["--exact", &child_name, "--nocapture", "--test-threads=1"])
            .env(KILL_CHILD_ENV, &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ready = path.with_extension(format!("ready-{}", child.id()));
        // Mostly kill while it saves in its loop; sometimes at a random early moment.
        if rng.random_bool(0.8) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !ready.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..25_000)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let _ = fs::remove_file(&ready);
        kills += 1;

        let got = read_weights::<f32>(&path)
            .unwrap_or_else(|e| panic!("after kill {kills}, the checkpoint does not load: {e}"));
        if got == a_values {
            saw_a += 1;
        } else if got == b_values {
            saw_b += 1;
        } else {
            panic!("after kill {kills}, the checkpoint is neither A nor B");
        }
        let temps = temporaries(&dir);
        left_temp += usize::from(!temps.is_empty());
        max_temps = max_temps.max(temps.len());
        // Each save first removes the temporaries of dead processes, so at most the one of
        // the save just killed remains.
        assert!(temps.len() <= 1, "after kill {kills}: {temps:?}");
    }
    // A later save cleans up.
    save_weights(&path, &b.iter().collect::<Vec<_>>()).unwrap();
    assert_eq!(temporaries(&dir), Vec::<String>::new());
    assert_eq!(read_weights::<f32>(&path).unwrap(), b_values);
    eprintln!(
        "kill test: {kills} kills ({saw_a} left A, {saw_b} left B, {left_temp} left a \
         temporary file, at most {max_temps} at once), {:?}",
        start.elapsed()
    );
    assert!(
        saw_b > 0,
        "the child never completed a save of B: the test proves nothing"
    );
    fs::remove_dir_all(&dir).unwrap();
}
