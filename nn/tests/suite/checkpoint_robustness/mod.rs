//! Robustness of checkpoint files: corrupt files never panic the loaders and never load
//! values other than the file's bytes say; a save killed at any moment leaves the old or the
//! new checkpoint; temporary files of killed saves neither pile up nor block later saves.
//!
//! | file | what |
//! |---|---|
//! | `reference.rs` | a straightforward safetensors reader the loaders are compared with |
//! | `mutation.rs` | thousands of randomly corrupted checkpoints |
//! | `malformed.rs` | hand-made malformed headers, each a typed format error |
//! | `killed_saves.rs` | saves killed at any moment; leftovers of killed saves |

mod killed_saves;
mod malformed;
mod mutation;
mod reference;

use std::fs;
use std::path::PathBuf;

use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad_autograd::{Float, Param};

fn scratch_dir(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tapegrad-ckpt-robust-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A safetensors file: the header length, `json`, then `data`.
fn file_with_header(json: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// The header length, the header JSON and the data of a file (which must have them).
fn split_file(bytes: &[u8]) -> (usize, &[u8], &[u8]) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (n, &bytes[8..8 + n], &bytes[8 + n..])
}

/// Parameters named and shaped by `spec`, with values drawn from `seed`.
fn params<T: Float>(spec: &[(&str, Vec<usize>)], seed: u64) -> Vec<Param<T>> {
    let mut rng = StdRng::seed_from_u64(seed);
    spec.iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let values = (0..n)
                .map(|_| T::from_f64(rng.random_range(-3.0..3.0)))
                .collect();
            Param::new(*name, ArrayD::from_shape_vec(IxDyn(shape), values).unwrap())
        })
        .collect()
}
