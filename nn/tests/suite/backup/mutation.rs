//! Randomly mutated backups, in the style of the checkpoint mutation tests: every one is
//! read and restored without a panic (an error, or a snapshot the restore checks).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use ndarray::{Array1, Array2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad_nn::callbacks::BackupAndRestore;
use tapegrad_nn::layers::{Dense, Dropout, Sequential};
use tapegrad_nn::model::{FitOptions, Loss, Model};
use tapegrad_nn::snapshot::TrainingSnapshot;
use tapegrad_nn::{Module, callbacks::EarlyStopping};
use tapegrad_optim::{Adam, Optimizer};

use super::scratch_dir;

fn model() -> Sequential<f32> {
    Sequential::new()
        .add(Dense::new(3))
        .add(Dropout::new(0.2))
        .add(Dense::new(1))
        .with_input_shape(&[2])
}

/// The bytes of a backup of a short run with early stopping (state with tensors).
fn good_backup(dir: &Path) -> Vec<u8> {
    let mut m = Model::new(model());
    m.compile(Adam::new(0.01).unwrap(), Loss::mse(), &[]);
    let x = Array2::from_shape_fn((12, 2), |(i, j)| (i + j) as f32 / 12.0);
    let y = Array1::from_shape_fn(12, |i| i as f32 / 12.0).insert_axis(ndarray::Axis(1));
    let options = FitOptions::default()
        .epochs(2)
        .batch_size(4)
        .validation_split(0.25)
        .callback(EarlyStopping::new().patience(5).restore_best_weights(true))
        .callback(BackupAndRestore::new(dir).delete_on_completion(false));
    m.fit(&x, &y, options).unwrap();
    std::fs::read(dir.join("training_state.safetensors")).unwrap()
}

/// Reads and restores `bytes`; `Ok` with whether it restored, `Err` on a panic.
fn read_and_restore(bytes: &[u8]) -> Result<bool, String> {
    catch_unwind(AssertUnwindSafe(|| {
        let Ok(snapshot) = TrainingSnapshot::<f32>::from_bytes(Path::new("mutant"), bytes) else {
            return false;
        };
        let mut m = model();
        let mut opt = Adam::<f32>::new(0.01).unwrap();
        let restored = snapshot.restore(&mut m, &mut opt).is_ok();
        let _ = (
            snapshot.epoch(),
            snapshot.history(),
            opt.lr(),
            m.params().len(),
        );
        restored
    }))
    .map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

/// One random mutation: flipped bytes, a cut, a splice, or an edit of a digit or a
/// character of the JSON header (where the description lives).
fn mutate(good: &[u8], rng: &mut StdRng) -> Vec<u8> {
    let mut bytes = good.to_vec();
    let header_end = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    match rng.random_range(0..5) {
        0 => {
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..bytes.len());
                bytes[i] ^= 1 << rng.random_range(0..8);
            }
        }
        1 => bytes.truncate(rng.random_range(0..bytes.len())),
        2 => {
            let i = rng.random_range(8..header_end);
            let digits = b"0123456789";
            if bytes[i].is_ascii_digit() {
                bytes[i] = digits[rng.random_range(0..10)];
            } else {
                bytes[i] = b"{}[]\",:-0a"[rng.random_range(0..10)];
            }
        }
        3 => {
            // Remove a run of the header's characters and pad with spaces (length kept).
            let i = rng.random_range(8..header_end);
            let n = rng.random_range(1..12).min(header_end - i);
            bytes.drain(i..i + n);
            for _ in 0..n {
                bytes.insert(header_end - n, b' ');
            }
        }
        _ => {
            // A digit of the header becomes a long number (huge counts, epochs, ranks).
            let at: Vec<usize> = (8..header_end)
                .filter(|&i| bytes[i].is_ascii_digit())
                .collect();
            if let Some(&i) = at.get(rng.random_range(0..at.len().max(1))) {
                let mut out = bytes[..i].to_vec();
                out.extend_from_slice(b"99999999999999999999");
                out.extend_from_slice(&bytes[i + 1..]);
                let len = (u64::from_le_bytes(out[..8].try_into().unwrap()) + 19).to_le_bytes();
                out[..8].copy_from_slice(&len);
                bytes = out;
            }
        }
    }
    bytes
}

#[test]
fn mutated_backups_never_panic() {
    let dir = scratch_dir("mutation");
    let good = good_backup(&dir);
    assert_eq!(read_and_restore(&good), Ok(true));
    let mut rng = StdRng::seed_from_u64(0x28);
    let (mut panics, mut restored) = (Vec::new(), 0);
    for case in 0..3000 {
        let bytes = mutate(&good, &mut rng);
        match read_and_restore(&bytes) {
            Ok(r) => restored += usize::from(r),
            Err(message) => panics.push(format!("case {case}: {message}")),
        }
    }
    assert!(
        panics.is_empty(),
        "{} panics: {:?}",
        panics.len(),
        &panics[..panics.len().min(5)]
    );
    // Some mutations hit bits of tensor data only: those still restore.
    assert!(
        restored > 0 && restored < 3000,
        "{restored} of 3000 restored"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
