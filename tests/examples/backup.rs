//! The main jobs' `--backup DIR`: a child process (this test binary, running one of the
//! `*_backup_child` tests) trains with a backup and kills itself with SIGKILL after a
//! given step; started again until it finishes, it ends with the bytes of a run never
//! interrupted.

use std::path::Path;
use std::process::{Command, Stdio};

use clap::Parser;
use tapegrad::nn::callbacks::{BatchLogs, Callback, Control};

use super::{Scratch, fashion_mnist, makemore};

/// Set in a child: `<work dir>;<backup dir>;<kill after step>` (`-`: never).
const CHILD_ENV: &str = "TAPEGRAD_EXAMPLES_BACKUP_CHILD";

/// Kills this process with SIGKILL (as a pre-empted machine would) and waits for the end.
fn kill_self() -> ! {
    let pid = std::process::id().to_string();
    let _ = Command::new("kill").args(["-KILL", &pid]).status();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// The child's spec: the work folder, the backup folder and the step to be killed after.
fn child_spec() -> Option<(String, String, Option<usize>)> {
    let spec = std::env::var(CHILD_ENV).ok()?;
    let parts: Vec<&str> = spec.split(';').collect();
    Some((
        parts[0].to_string(),
        parts[1].to_string(),
        parts[2].parse().ok(),
    ))
}

/// The name the test harness knows the test `name` of this module by.
fn full_test_name(name: &str) -> String {
    match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::{name}"),
        None => name.to_string(),
    }
}

/// Runs the child test `test` once: `Ok` when it finished, else the signal that ended it.
fn run_child(
    test: &str,
    work: &Path,
    backup: &Path,
    kill_at: Option<usize>,
) -> Result<(), Option<i32>> {
    let spec = format!(
        "{};{};{}",
        work.display(),
        backup.display(),
        kill_at.map_or("-".to_string(), |k| k.to_string())
    );
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            &full_test_name(test),
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD_ENV, spec)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .unwrap();
    if status.success() {
        Ok(())
    } else {
        Err(std::os::unix::process::ExitStatusExt::signal(&status))
    }
}

/// SIGKILL's number.
const SIGKILL: i32 = 9;

/// Runs the child `test` killed after each step of `kills` in turn (counted as the child
/// counts them), then to the end.
fn killed_until_done(test: &str, work: &Path, backup: &Path, kills: &[usize]) {
    for &at in kills {
        assert_eq!(
            run_child(test, work, backup, Some(at)),
            Err(Some(SIGKILL)),
            "{test}: the child was to be killed after step {at}"
        );
        assert!(
            backup.join("training_state.safetensors").exists(),
            "{test}: no backup after a kill at {at}"
        );
    }
    assert_eq!(run_child(test, work, backup, None), Ok(()), "{test}");
}

/// A small makemore job on `words`: a one-block transformer, 12 steps, evaluated every 3.
fn makemore_job(words: &Path, work: &Path, extra: &[&str]) -> makemore::Args {
    let mut args = vec![
        "makemore",
        "--work-dir",
        work.to_str().unwrap(),
        "--input",
        words.to_str().unwrap(),
        "--max-steps",
        "12",
        "--eval-every",
        "3",
        "--n-embd",
        "8",
        "--n-embd2",
        "8",
        "--n-layer",
        "1",
        "--n-head",
        "2",
        "--batch-size",
        "4",
    ];
    args.extend_from_slice(extra);
    makemore::Args::parse_from(args)
}

/// The words of the makemore backup tests, in the folder's parent.
fn words_file(work: &Path) -> std::path::PathBuf {
    work.parent().unwrap().join("words.txt")
}

#[test]
fn makemore_generator_continues_the_seeded_stream() {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    use tapegrad::models::makemore::{Config, Kind, language_model};
    use tapegrad::nn::Module;

    // After a model's initialization (tens of thousands of draws), the ChaCha12 generator
    // draws what the seeded StdRng would: the run's rows and samples are the same.
    let mut rng = StdRng::seed_from_u64(3407);
    let mut model = language_model::<f32>(Kind::Mlp, &Config::new(27, 16));
    model.build(&[16], &mut rng);
    let mut continued = makemore::backup::continue_stream(&rng, 3407).unwrap();
    assert!(
        continued.get_word_pos() > 60_000,
        "{}",
        continued.get_word_pos()
    );
    for _ in 0..1000 {
        assert_eq!(
            rng.random_range(0..28_000_usize),
            continued.random_range(0..28_000_usize)
        );
        assert_eq!(rng.random::<f64>(), continued.random::<f64>());
    }
}

/// The child of the makemore test: the small job with a backup every 2 steps, kept at the
/// end; killed after the given step. Without the variable, does nothing.
#[test]
fn makemore_backup_child() {
    let Some((work, backup, kill_at)) = child_spec() else {
        return;
    };
    let work = Path::new(&work);
    let extra = ["--backup", &backup, "--backup-every", "2", "--keep-backup"];
    let args = makemore_job(&words_file(work), work, &extra);
    makemore::run_with(&args, &mut |done| {
        if Some(done) == kill_at {
            kill_self();
        }
    })
    .unwrap();
}

#[test]
fn makemore_backup_resumes_a_killed_run_to_the_same_bytes() {
    let dir = Scratch::new("makemore-backup");
    let words = dir.join("words.txt");
    std::fs::write(
        &words,
        "anna\nbob\ncarla\ndavid\neve\nfrank\ngina\nhal\nida\njon\nkim\n",
    )
    .unwrap();
    let folder = |name: &str| {
        let path = dir.join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    };
    let read = |path: &Path| std::fs::read(path).unwrap();
    let state = |backup: &Path| read(&backup.join("training_state.safetensors"));

    // Uninterrupted, without and with a backup (kept): the same model.
    let plain = folder("plain");
    let report = makemore::run(&makemore_job(&words, &plain, &[])).unwrap();
    assert_eq!(report.evaluations.len(), 4);
    let model = read(&plain.join("model.safetensors"));
    let (backed, backed_state) = (folder("backed"), dir.join("backed-state"));
    let keep = [
        "--backup",
        backed_state.to_str().unwrap(),
        "--backup-every",
        "2",
        "--keep-backup",
    ];
    makemore::run(&makemore_job(&words, &backed, &keep)).unwrap();
    assert!(
        read(&backed.join("model.safetensors")) == model,
        "a backup changed the run"
    );
    let finished = state(&backed_state);

    // Killed after steps 5 (resumed from 4), 9 (from 8: step 9's evaluation again) and
    // 11 (from 10), then to the end: the same model and the same final state.
    let (killed, killed_state) = (folder("killed"), dir.join("killed-state"));
    killed_until_done("makemore_backup_child", &killed, &killed_state, &[5, 9, 11]);
    assert!(
        read(&killed.join("model.safetensors")) == model,
        "the resumed run saved another model"
    );
    assert!(
        state(&killed_state) == finished,
        "the resumed run's final state (weights, AdamW, generator, evaluations) differs"
    );

    // The kept backup continues to a larger --max-steps, then is deleted.
    let more = ["--backup", killed_state.to_str().unwrap()];
    let report = makemore::run(&makemore::Args {
        max_steps: 14,
        ..makemore_job(&words, &killed, &more)
    })
    .unwrap();
    let steps: Vec<usize> = report.evaluations.iter().map(|e| e.0).collect();
    assert_eq!(steps, [3, 6, 9, 12, 14]);
    assert!(!killed_state.join("training_state.safetensors").exists());

    // A backup of another run is refused, naming what differs.
    let refused = |extra: &[&str], edit: fn(&mut makemore::Args)| {
        let mut args = vec!["--backup", backed_state.to_str().unwrap()];
        args.extend_from_slice(extra);
        let mut job = makemore_job(&words, &folder("refused"), &args);
        edit(&mut job);
        makemore::run(&job).unwrap_err().to_string()
    };
    let err = refused(&["--type", "gru"], |_| {});
    assert!(
        err.contains("another model") && err.contains("cell.xh_to_z"),
        "{err}"
    );
    let err = refused(&[], |job| job.n_embd = 16);
    assert!(
        err.contains("wte.embeddings has shape [18, 8] in the snapshot, [18, 16] in the model"),
        "{err}"
    );
    let err = refused(&["--seed", "1"], |_| {});
    assert!(
        err.contains("seed is 3407") && err.contains("this run's is 1"),
        "{err}"
    );
}

/// Kills the process after its `at`-th batch (counted from the process's start).
struct KillAt {
    at: Option<usize>,
    seen: usize,
}

impl Callback<f32> for KillAt {
    fn name(&self) -> &'static str {
        "KillAt"
    }

    fn on_batch_end(&mut self, _batch: &BatchLogs) -> Control {
        self.seen += 1;
        if Some(self.seen) == self.at {
            kill_self();
        }
        Control::Continue
    }
}

/// A small fashion_mnist job: 200 training images, 3 epochs of 7 batches.
fn fashion_job(save: &Path, extra: &[&str]) -> fashion_mnist::Args {
    let mut args = vec![
        "fashion_mnist",
        "--epochs",
        "3",
        "--train-limit",
        "200",
        "--test-limit",
        "50",
        "--save",
        save.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    fashion_mnist::Args::parse_from(args)
}

/// The child of the fashion_mnist test: the small job with a backup, killed after the
/// given batch. Without the variable, does nothing.
#[test]
fn fashion_mnist_backup_child() {
    let Some((work, backup, at)) = child_spec() else {
        return;
    };
    let args = fashion_job(
        &Path::new(&work).join("model.safetensors"),
        &["--backup", &backup],
    );
    fashion_mnist::run_with(&args, |options| options.callback(KillAt { at, seen: 0 })).unwrap();
}

#[test]
fn fashion_mnist_backup_resumes_a_killed_run_to_the_same_bytes() {
    let dir = Scratch::new("fashion-backup");
    let plain = dir.join("plain.safetensors");
    fashion_mnist::run(&fashion_job(&plain, &[])).unwrap();

    // Killed after batch 10 (epoch 2, resumed from epoch 1's end), then after 9 more
    // (epoch 3, resumed from epoch 2's end), then to the end.
    let backup = dir.join("backup");
    killed_until_done("fashion_mnist_backup_child", &dir, &backup, &[10, 9]);
    assert!(
        std::fs::read(dir.join("model.safetensors")).unwrap() == std::fs::read(&plain).unwrap(),
        "the resumed run's weights differ from an uninterrupted run's"
    );
    assert!(
        !backup.join("training_state.safetensors").exists(),
        "the backup is deleted when training ends"
    );
}
