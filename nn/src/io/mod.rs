//! Saving and loading weights in the [safetensors] format, atomically.
//!
//! A weights file holds one tensor per parameter, named by the parameter's path
//! (`dense_0.kernel`, `dense_0.bias`, ...), in the element type of the model (`F32` or
//! `F64`), in row-major order. A model's checkpoint ([`save_state`], what
//! [`Model::save`](crate::model::Model::save) writes) also holds one tensor per
//! [`Buffer`] (non-trainable state such as `batch_norm_0.running_mean`), in the same flat
//! namespace, as a PyTorch `state_dict` does; a model without buffers writes exactly the
//! file [`save_weights`] writes. Any module writes and reads the same file with
//! [`Module::save`](crate::Module::save), [`Module::load`](crate::Module::load) and
//! [`Module::load_non_strict`](crate::Module::load_non_strict). The file opens as-is in Python:
//!
//! ```python
//! from safetensors.numpy import load_file
//! weights = load_file("line.safetensors")   # {"dense_0.kernel": array([[5.0]], dtype=float32), ...}
//! ```
//!
//! (`safetensors.torch.load_file` gives the same tensors as PyTorch tensors.)
//!
//! Writes are atomic: the file is written to a temporary file in the same folder, flushed
//! to disk, then renamed over the destination. A failed or interrupted save therefore never
//! leaves a partially written file in place of a good one.
//!
//! Temporary files are named `.<file name>.<pid>-<counter>-<nonce>.tmp`, unique per
//! attempt. Each save first removes the stale temporaries of the same checkpoint, left by
//! saves that were killed, so they neither accumulate nor block later saves: those named
//! with this process's id that it is not writing (an earlier process had the same id), those
//! of processes that have exited (known on Linux), and any unmodified for
//! [`STALE_TEMP_AGE`]. Another live save's temporary file is never removed, nor any other
//! file (other checkpoints' temporaries included).
//!
//! Loads validate the whole header before touching any tensor data (see [`FormatError`]:
//! sizes and offsets are checked with checked arithmetic, a corrupt file is an error, never a
//! panic). Loads are all-or-nothing: every name, shape and element type is checked against
//! the parameters before any parameter changes, and any mismatch is a typed [`IoError`].
//!
//! ```
//! use ndarray::array;
//! use tapegrad_autograd::Param;
//! use tapegrad_nn::io::{load_weights, save_weights};
//!
//! let dir = std::env::temp_dir().join(format!("tapegrad-io-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("weights.safetensors");
//!
//! let kernel = Param::new("dense_0.kernel", array![[5.0_f32]].into_dyn());
//! let bias = Param::new("dense_0.bias", array![1.0_f32].into_dyn());
//! save_weights(&path, &[&kernel, &bias])?;
//!
//! let mut kernel2 = Param::new("dense_0.kernel", array![[0.0_f32]].into_dyn());
//! let mut bias2 = Param::new("dense_0.bias", array![0.0_f32].into_dyn());
//! load_weights(&path, &mut [&mut kernel2, &mut bias2])?;
//! assert_eq!(kernel2.value(), kernel.value());
//! assert_eq!(bias2.value(), bias.value());
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), tapegrad_nn::io::IoError>(())
//! ```
//!
//! [safetensors]: https://huggingface.co/docs/safetensors

use std::borrow::Cow;
use std::cell::Ref;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use safetensors::tensor::{Dtype, View};
use tapegrad_autograd::{Float, Param};

use crate::buffer::Buffer;

mod atomic_write;
mod header;

pub use atomic_write::STALE_TEMP_AGE;
pub(crate) use atomic_write::write_atomic;
pub use header::{FormatError, MAX_HEADER_LEN};
use header::{Header, TensorInfo, parse_header};

mod error;
mod module_state;
#[cfg(test)]
mod tests;

pub use error::IoError;
pub use module_state::IncompatibleKeys;
pub(crate) use module_state::load_module_state;

/// Saves `params` to `path` in the safetensors format, each under its name, atomically (see
/// the [module documentation](self)).
///
/// # Errors
///
/// [`IoError::DuplicateName`] if two parameters share a name; [`IoError::Io`] if the file
/// cannot be written (in which case any file previously at `path` is left untouched).
pub fn save_weights<T: Float>(path: impl AsRef<Path>, params: &[&Param<T>]) -> Result<(), IoError> {
    save_state(path, params, &[])
}

/// Saves `params` and `buffers` to `path` in the safetensors format, each under its name
/// (one flat namespace, like a PyTorch `state_dict`), atomically.
///
/// ```
/// use ndarray::array;
/// use tapegrad_autograd::Param;
/// use tapegrad_nn::Buffer;
/// use tapegrad_nn::io::{load_state, save_state};
///
/// let dir = std::env::temp_dir().join(format!("tapegrad-state-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("state.safetensors");
///
/// let gamma = Param::new("bn.gamma", array![2.0_f32].into_dyn());
/// let mean = Buffer::new("bn.running_mean", array![0.5_f32].into_dyn());
/// save_state(&path, &[&gamma], &[&mean])?;
///
/// let mut gamma2 = Param::new("bn.gamma", array![1.0_f32].into_dyn());
/// let mut mean2 = Buffer::new("bn.running_mean", array![0.0_f32].into_dyn());
/// load_state(&path, &mut [&mut gamma2], &mut [&mut mean2])?;
/// assert_eq!(gamma2.value(), gamma.value());
/// assert_eq!(*mean2.value(), *mean.value());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), tapegrad_nn::io::IoError>(())
/// ```
///
/// # Errors
///
/// [`IoError::DuplicateName`] if two parameters or buffers share a name; [`IoError::Io`]
/// if the file cannot be written (any file previously at `path` is then left untouched).
pub fn save_state<T: Float>(
    path: impl AsRef<Path>,
    params: &[&Param<T>],
    buffers: &[&Buffer<T>],
) -> Result<(), IoError> {
    let path = path.as_ref();
    let bytes = state_to_bytes(params, buffers)?;
    write_atomic(path, &bytes)
}

/// Serializes `params` to the bytes of a safetensors file (what [`save_weights`] writes).
///
/// # Errors
///
/// [`IoError::DuplicateName`] if two parameters share a name.
pub fn weights_to_bytes<T: Float>(params: &[&Param<T>]) -> Result<Vec<u8>, IoError> {
    state_to_bytes(params, &[])
}

/// Serializes `params` and `buffers` to the bytes of a safetensors file (what
/// [`save_state`] writes).
///
/// # Errors
///
/// [`IoError::DuplicateName`] if two parameters or buffers share a name.
pub fn state_to_bytes<T: Float>(
    params: &[&Param<T>],
    buffers: &[&Buffer<T>],
) -> Result<Vec<u8>, IoError> {
    let dtype = dtype_of::<T>()?;
    let buffer_values: Vec<Ref<'_, ArrayD<T>>> = buffers.iter().map(|b| b.value()).collect();
    let entries = params.iter().map(|p| (p.name(), p.value())).chain(
        buffers
            .iter()
            .zip(&buffer_values)
            .map(|(b, v)| (b.name(), &**v)),
    );
    tensors_to_bytes(dtype, entries, HashMap::new())
}

/// The bytes of a safetensors file holding `entries` (name, value) in `dtype`, with
/// `metadata` as its `__metadata__`, or `producer = tapegrad` when `metadata` is empty.
/// safetensors writes the metadata in its hash map's order, which changes from map to map:
/// one key keeps the bytes of a file the same for the same contents.
///
/// # Errors
///
/// [`IoError::DuplicateName`] if two entries share a name.
pub(crate) fn tensors_to_bytes<'v, T: Float + 'v>(
    dtype: Dtype,
    entries: impl Iterator<Item = (&'v str, &'v ArrayD<T>)>,
    mut metadata: HashMap<String, String>,
) -> Result<Vec<u8>, IoError> {
    let mut seen = HashSet::new();
    let mut tensors = Vec::new();
    for (name, value) in entries {
        if !seen.insert(name) {
            return Err(IoError::DuplicateName {
                name: name.to_string(),
            });
        }
        tensors.push((name.to_string(), TensorBytes::new(dtype, value)));
    }
    if metadata.is_empty() {
        metadata.insert("producer".to_string(), "tapegrad".to_string());
    }
    let metadata = Some(metadata);
    // Serialization only fails on an arithmetic overflow of the offsets, impossible for
    // arrays that exist in memory; report it as an invalid-data write error all the same.
    safetensors::serialize(tensors, &metadata).map_err(|e| IoError::Io {
        action: "serialize",
        path: PathBuf::new(),
        source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
    })
}

/// The bytes of `path`, or [`IoError::Io`] naming it.
fn read_file(path: &Path) -> Result<Vec<u8>, IoError> {
    fs::read(path).map_err(|source| IoError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })
}

/// Loads the weights saved at `path` into `params`, matching tensors to parameters by name.
///
/// Every parameter must have a tensor of the same name, shape and element type, and the
/// file must hold no other tensor. All of that is checked before any parameter changes: on
/// error, every parameter is exactly as before.
///
/// # Errors
///
/// [`IoError::Io`] (missing or unreadable file), [`IoError::Format`] (truncated or corrupt
/// file), [`IoError::MissingTensor`], [`IoError::UnexpectedTensor`],
/// [`IoError::ShapeMismatch`], [`IoError::DtypeMismatch`], [`IoError::DuplicateName`].
pub fn load_weights<T: Float>(
    path: impl AsRef<Path>,
    params: &mut [&mut Param<T>],
) -> Result<(), IoError> {
    load_state(path, params, &mut [])
}

/// Like [`load_weights`], from the bytes of a safetensors file; `path` is only used in error
/// messages.
///
/// # Errors
///
/// As [`load_weights`], except [`IoError::Io`].
pub fn load_weights_from_bytes<T: Float>(
    path: &Path,
    bytes: &[u8],
    params: &mut [&mut Param<T>],
) -> Result<(), IoError> {
    load_state_from_bytes(path, bytes, params, &mut [])
}

/// Loads a checkpoint saved by [`save_state`] into `params` and `buffers`, matching tensors
/// by name: every parameter and every buffer needs a tensor of the same name, shape and
/// element type, and the file must hold no other tensor. Everything is checked before
/// anything changes: on error, every parameter and buffer is exactly as before. (A file
/// without buffers, from [`save_weights`], loads into a model without buffers.)
///
/// # Errors
///
/// As [`load_weights`], and [`IoError::MissingBuffer`] naming a buffer the file lacks.
pub fn load_state<T: Float>(
    path: impl AsRef<Path>,
    params: &mut [&mut Param<T>],
    buffers: &mut [&mut Buffer<T>],
) -> Result<(), IoError> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    load_state_from_bytes(path, &bytes, params, buffers)
}

/// Like [`load_state`], from the bytes of a safetensors file; `path` is only used in error
/// messages.
///
/// # Errors
///
/// As [`load_state`], except [`IoError::Io`].
pub fn load_state_from_bytes<T: Float>(
    path: &Path,
    bytes: &[u8],
    params: &mut [&mut Param<T>],
    buffers: &mut [&mut Buffer<T>],
) -> Result<(), IoError> {
    let targets: Vec<Target> = params
        .iter()
        .map(|p| Target {
            name: p.name().to_string(),
            shape: p.shape().to_vec(),
            is_buffer: false,
        })
        .chain(buffers.iter().map(|b| Target {
            name: b.name().to_string(),
            shape: b.shape(),
            is_buffer: true,
        }))
        .collect();
    let mut values = read_checked(path, bytes, &targets)?.into_iter();
    for (p, value) in params.iter_mut().zip(values.by_ref()) {
        *p.value_mut() = value;
    }
    for (b, value) in buffers.iter_mut().zip(values) {
        *b.value_mut() = value;
    }
    Ok(())
}

/// A tensor a checkpoint must hold: a parameter's or a buffer's name and shape.
pub(crate) struct Target {
    pub(crate) name: String,
    pub(crate) shape: Vec<usize>,
    pub(crate) is_buffer: bool,
}

/// The targets' names, or [`IoError::DuplicateName`] for the first name two targets share.
fn unique_names(targets: &[Target]) -> Result<HashSet<&str>, IoError> {
    let mut seen = HashSet::with_capacity(targets.len());
    for t in targets {
        if !seen.insert(t.name.as_str()) {
            return Err(IoError::DuplicateName {
                name: t.name.clone(),
            });
        }
    }
    Ok(seen)
}

/// The values for `targets` (in their order) from the bytes of a safetensors file, after
/// checking that every target has a tensor of its name, shape and element type, that the
/// file holds no other tensor and that no two targets share a name.
pub(crate) fn read_checked<T: Float>(
    path: &Path,
    bytes: &[u8],
    targets: &[Target],
) -> Result<Vec<ArrayD<T>>, IoError> {
    let file = parse(path, bytes)?;
    let by_name: HashMap<&str, &TensorInfo> =
        file.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let seen = unique_names(targets)?;
    // Every missing, mis-shaped and unexpected tensor, each list sorted by name.
    let mut missing: Vec<&Target> = Vec::new();
    let mut shapes: Vec<(String, Vec<usize>, Vec<usize>)> = Vec::new();
    for t in targets {
        match by_name.get(t.name.as_str()) {
            None => missing.push(t),
            Some(info) if info.shape != t.shape => {
                shapes.push((t.name.clone(), t.shape.clone(), info.shape.clone()));
            }
            Some(_) => {}
        }
    }
    let mut unexpected: Vec<String> = file
        .tensors
        .iter()
        .filter(|t| !seen.contains(t.name.as_str()))
        .map(|t| t.name.clone())
        .collect();
    missing.sort_by(|a, b| a.name.cmp(&b.name));
    shapes.sort();
    unexpected.sort();
    let path_buf = path.to_path_buf();
    match (missing.as_slice(), unexpected.len(), shapes.len()) {
        ([], 0, 0) => {}
        ([t], 0, 0) => {
            let (name, available) = (t.name.clone(), available_names(&file));
            return Err(if t.is_buffer {
                IoError::MissingBuffer {
                    path: path_buf,
                    name,
                    available,
                }
            } else {
                IoError::MissingTensor {
                    path: path_buf,
                    name,
                    available,
                }
            });
        }
        ([], 1, 0) => {
            return Err(IoError::UnexpectedTensor {
                path: path_buf,
                name: unexpected.remove(0),
            });
        }
        ([], 0, 1) => {
            let (name, expected, found) = shapes.remove(0);
            return Err(IoError::ShapeMismatch {
                path: path_buf,
                name,
                expected,
                found,
            });
        }
        _ => {
            let names = |buffers: bool| {
                missing
                    .iter()
                    .filter(|t| t.is_buffer == buffers)
                    .map(|t| t.name.clone())
                    .collect()
            };
            return Err(IoError::StateMismatch {
                path: path_buf,
                missing: names(false),
                missing_buffers: names(true),
                unexpected,
                shapes,
            });
        }
    }
    // Convert everything first, then assign: all or nothing.
    targets
        .iter()
        .map(|t| tensor_to_array::<T>(path, by_name[t.name.as_str()], bytes))
        .collect()
}

/// Reads every tensor of a safetensors file as an array of `T`, by name.
///
/// # Errors
///
/// [`IoError::Io`], [`IoError::Format`], or [`IoError::DtypeMismatch`] if a tensor is not
/// of type `T`.
pub fn read_weights<T: Float>(
    path: impl AsRef<Path>,
) -> Result<BTreeMap<String, ArrayD<T>>, IoError> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    read_weights_from_bytes(path, &bytes)
}

/// Like [`read_weights`], from the bytes of a safetensors file; `path` is only used in error
/// messages.
///
/// # Errors
///
/// [`IoError::Format`], or [`IoError::DtypeMismatch`] if a tensor is not of type `T`.
pub fn read_weights_from_bytes<T: Float>(
    path: &Path,
    bytes: &[u8],
) -> Result<BTreeMap<String, ArrayD<T>>, IoError> {
    let file = parse(path, bytes)?;
    file.tensors
        .iter()
        .map(|info| Ok((info.name.clone(), tensor_to_array::<T>(path, info, bytes)?)))
        .collect()
}

/// The tensors of a safetensors file by name, and its `__metadata__` map.
pub(crate) type TensorsAndMetadata<T> = (BTreeMap<String, ArrayD<T>>, BTreeMap<String, String>);

/// Every tensor of the safetensors file `bytes` as an array of `T`, by name, and its
/// `__metadata__` map (the header validated first, as every load does).
///
/// # Errors
///
/// [`IoError::Format`], or [`IoError::DtypeMismatch`] if a tensor is not of type `T`.
pub(crate) fn read_tensors_and_metadata<T: Float>(
    path: &Path,
    bytes: &[u8],
) -> Result<TensorsAndMetadata<T>, IoError> {
    let file = parse(path, bytes)?;
    let tensors = file
        .tensors
        .iter()
        .map(|info| Ok((info.name.clone(), tensor_to_array::<T>(path, info, bytes)?)))
        .collect::<Result<_, IoError>>()?;
    Ok((tensors, file.metadata))
}

/// The validated header of the safetensors file `bytes`, or [`IoError::Format`].
fn parse(path: &Path, bytes: &[u8]) -> Result<Header, IoError> {
    parse_header(bytes).map_err(|source| IoError::Format {
        path: path.to_path_buf(),
        source,
    })
}

fn available_names(file: &Header) -> String {
    let mut names: Vec<&str> = file.tensors.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    if names.is_empty() {
        "no tensors".to_string()
    } else {
        names.join(", ")
    }
}

pub(crate) fn dtype_of<T: Float>() -> Result<Dtype, IoError> {
    match T::DTYPE {
        "F32" => Ok(Dtype::F32),
        "F64" => Ok(Dtype::F64),
        other => Err(IoError::UnsupportedDtype { dtype: other }),
    }
}

/// The tensor `info` of the file `bytes` (whose header [`parse_header`] validated) as an
/// array of `T`.
fn tensor_to_array<T: Float>(
    path: &Path,
    info: &TensorInfo,
    bytes: &[u8],
) -> Result<ArrayD<T>, IoError> {
    let expected = dtype_of::<T>()?;
    if info.dtype != T::DTYPE {
        return Err(IoError::DtypeMismatch {
            path: path.to_path_buf(),
            name: info.name.clone(),
            expected: T::DTYPE,
            found: info.dtype.clone(),
        });
    }
    // The header check guarantees the range is in bounds and its length is the shape's
    // element count times the dtype size.
    let raw = &bytes[info.range.clone()];
    // Little-endian bytes; the conversions through f64 are exact for f32 and f64.
    let data: Vec<T> = match expected {
        Dtype::F32 => raw
            .chunks_exact(4)
            .map(|b| {
                <T as Float>::from_f64(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            })
            .collect(),
        _ => raw
            .chunks_exact(8)
            .map(|b| {
                let mut le = [0u8; 8];
                le.copy_from_slice(b);
                <T as Float>::from_f64(f64::from_le_bytes(le))
            })
            .collect(),
    };
    // The header check also guarantees ndarray's own limit on the shape.
    ArrayD::from_shape_vec(IxDyn(&info.shape), data).map_err(|_| IoError::Format {
        path: path.to_path_buf(),
        source: FormatError::ShapeOverflow {
            name: info.name.clone(),
            shape: info.shape.iter().map(|&d| d as u64).collect(),
            dtype: info.dtype.clone(),
        },
    })
}

/// One tensor's little-endian bytes, ready for the safetensors writer.
struct TensorBytes {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl TensorBytes {
    fn new<T: Float>(dtype: Dtype, value: &ArrayD<T>) -> Self {
        let mut bytes = Vec::with_capacity(value.len() * dtype.size());
        // `iter` walks the logical (row-major) order whatever the memory layout.
        match dtype {
            Dtype::F32 => {
                for v in value.iter() {
                    bytes.extend_from_slice(&(<T as Float>::to_f64(*v) as f32).to_le_bytes());
                }
            }
            _ => {
                for v in value.iter() {
                    bytes.extend_from_slice(&<T as Float>::to_f64(*v).to_le_bytes());
                }
            }
        }
        TensorBytes {
            dtype,
            shape: value.shape().to_vec(),
            bytes,
        }
    }
}

impl View for TensorBytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}
