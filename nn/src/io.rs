//! Saving and loading weights in the [safetensors] format, atomically.
//!
//! A weights file holds one tensor per parameter, named by the parameter's path
//! (`dense_0.kernel`, `dense_0.bias`, ...), in the element type of the model (`F32` or
//! `F64`), in row-major order. A model's checkpoint ([`save_state`], what
//! [`Model::save`](crate::model::Model::save) writes) also holds one tensor per
//! [`Buffer`] (non-trainable state such as `batch_norm_0.running_mean`), in the same flat
//! namespace, as a PyTorch `state_dict` does; a model without buffers writes exactly the
//! file [`save_weights`] writes. It opens as-is in Python:
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
//! Loads are all-or-nothing: every name, shape and element type is checked against the
//! parameters before any parameter changes, and any mismatch is a typed [`IoError`].
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
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, View};
use tapegrad_autograd::{Float, Param};

use crate::buffer::Buffer;

/// Everything that can go wrong while saving or loading weights (or writing a history CSV).
///
/// Every variant names the file involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// The file could not be read, created, written or renamed into place.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done (`"read"`, `"write"`, `"rename into place"`, ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The file is not a valid safetensors file (truncated, corrupt header, offsets that do
    /// not cover the data, ...).
    #[error("{path} is not a valid safetensors file (truncated or corrupt?): {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The safetensors parser's error.
        #[source]
        source: SafeTensorError,
    },

    /// A parameter of the model has no tensor of its name in the file.
    #[error("{path} has no tensor `{name}` (it holds: {available})")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The parameter's name.
        name: String,
        /// The names the file holds, comma-separated.
        available: String,
    },

    /// A buffer of the model (non-trainable state, e.g. BatchNorm's running statistics) has
    /// no tensor of its name in the file.
    #[error(
        "{path} has no tensor `{name}` for the buffer (non-trainable state, such as \
         BatchNorm's running statistics) of that name (it holds: {available})"
    )]
    MissingBuffer {
        /// The file.
        path: PathBuf,
        /// The buffer's name.
        name: String,
        /// The names the file holds, comma-separated.
        available: String,
    },

    /// The file holds a tensor that matches no parameter (or buffer) of the model.
    #[error(
        "{path} holds tensor `{name}`, which matches no parameter or buffer of the model \
         (a different architecture, or a model that is not built yet?)"
    )]
    UnexpectedTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
    },

    /// A tensor's shape differs from its parameter's (or buffer's).
    #[error(
        "tensor `{name}` in {path} has shape {found:?}, but the parameter has shape {expected:?}"
    )]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// The parameter's shape.
        expected: Vec<usize>,
        /// The tensor's shape in the file.
        found: Vec<usize>,
    },

    /// A tensor's element type differs from the model's.
    #[error("tensor `{name}` in {path} has dtype {found}, but the model uses {expected}")]
    DtypeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// The model's element type (`F32` or `F64`).
        expected: &'static str,
        /// The tensor's element type in the file.
        found: String,
    },

    /// Two parameters (or buffers) share a name, so they cannot be told apart in a file.
    #[error(
        "two parameters or buffers are named `{name}`; weights are stored by name, names must \
         be unique"
    )]
    DuplicateName {
        /// The shared name.
        name: String,
    },

    /// The element type has no safetensors equivalent (only `f32` and `f64` are supported).
    #[error("element type {dtype} cannot be stored in safetensors (only F32 and F64)")]
    UnsupportedDtype {
        /// The type's name (`Float::DTYPE`).
        dtype: &'static str,
    },
}

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
    let mut seen = HashSet::with_capacity(params.len() + buffers.len());
    let mut tensors = Vec::with_capacity(params.len() + buffers.len());
    for (name, value) in entries {
        if !seen.insert(name) {
            return Err(IoError::DuplicateName {
                name: name.to_string(),
            });
        }
        tensors.push((name.to_string(), TensorBytes::new(dtype, value)));
    }
    let metadata = Some(HashMap::from([(
        "producer".to_string(),
        "tapegrad".to_string(),
    )]));
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

/// The values for `targets` (in their order) from the bytes of a safetensors file, after
/// checking that every target has a tensor of its name, shape and element type, that the
/// file holds no other tensor and that no two targets share a name.
pub(crate) fn read_checked<T: Float>(
    path: &Path,
    bytes: &[u8],
    targets: &[Target],
) -> Result<Vec<ArrayD<T>>, IoError> {
    let file = parse(path, bytes)?;
    let mut seen = HashSet::with_capacity(targets.len());
    for t in targets {
        if !seen.insert(t.name.as_str()) {
            return Err(IoError::DuplicateName {
                name: t.name.clone(),
            });
        }
    }
    let mut values = Vec::with_capacity(targets.len());
    for t in targets {
        let view = file.tensor(&t.name).map_err(|_| {
            let (path, name, available) =
                (path.to_path_buf(), t.name.clone(), available_names(&file));
            if t.is_buffer {
                IoError::MissingBuffer {
                    path,
                    name,
                    available,
                }
            } else {
                IoError::MissingTensor {
                    path,
                    name,
                    available,
                }
            }
        })?;
        if view.shape() != t.shape.as_slice() {
            return Err(IoError::ShapeMismatch {
                path: path.to_path_buf(),
                name: t.name.clone(),
                expected: t.shape.clone(),
                found: view.shape().to_vec(),
            });
        }
        values.push(tensor_to_array::<T>(path, &t.name, &view)?);
    }
    if let Some(extra) = file
        .names()
        .into_iter()
        .find(|n| !seen.contains(n.as_str()))
    {
        return Err(IoError::UnexpectedTensor {
            path: path.to_path_buf(),
            name: extra.clone(),
        });
    }
    Ok(values)
}

/// Loads a module's checkpoint (its parameters and buffers) from `path`: all or nothing.
pub(crate) fn load_module_state<T: Float, M: crate::Module<T> + ?Sized>(
    path: &Path,
    module: &mut M,
) -> Result<(), IoError> {
    let bytes = read_file(path)?;
    let targets: Vec<Target> = module
        .params()
        .iter()
        .map(|p| Target {
            name: p.name().to_string(),
            shape: p.shape().to_vec(),
            is_buffer: false,
        })
        .chain(module.buffers().iter().map(|b| Target {
            name: b.name().to_string(),
            shape: b.shape(),
            is_buffer: true,
        }))
        .collect();
    let mut values = read_checked(path, &bytes, &targets)?.into_iter();
    for (p, value) in module.params_mut().into_iter().zip(values.by_ref()) {
        *p.value_mut() = value;
    }
    for (b, value) in module.buffers_mut().into_iter().zip(values) {
        *b.value_mut() = value;
    }
    Ok(())
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
    let file = parse(path, &bytes)?;
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            let array = tensor_to_array::<T>(path, &name, &view)?;
            Ok((name, array))
        })
        .collect()
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>, IoError> {
    SafeTensors::deserialize(bytes).map_err(|source| IoError::Format {
        path: path.to_path_buf(),
        source,
    })
}

fn available_names(file: &SafeTensors<'_>) -> String {
    let mut names: Vec<&str> = file.names().into_iter().map(String::as_str).collect();
    names.sort_unstable();
    if names.is_empty() {
        "no tensors".to_string()
    } else {
        names.join(", ")
    }
}

fn dtype_of<T: Float>() -> Result<Dtype, IoError> {
    match T::DTYPE {
        "F32" => Ok(Dtype::F32),
        "F64" => Ok(Dtype::F64),
        other => Err(IoError::UnsupportedDtype { dtype: other }),
    }
}

fn tensor_to_array<T: Float>(
    path: &Path,
    name: &str,
    view: &safetensors::tensor::TensorView<'_>,
) -> Result<ArrayD<T>, IoError> {
    let expected = dtype_of::<T>()?;
    if view.dtype() != expected {
        return Err(IoError::DtypeMismatch {
            path: path.to_path_buf(),
            name: name.to_string(),
            expected: T::DTYPE,
            found: format!("{:?}", view.dtype()),
        });
    }
    // Little-endian bytes; the conversions through f64 are exact for f32 and f64.
    let data: Vec<T> = match expected {
        Dtype::F32 => view
            .data()
            .chunks_exact(4)
            .map(|b| {
                <T as Float>::from_f64(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            })
            .collect(),
        _ => view
            .data()
            .chunks_exact(8)
            .map(|b| {
                let mut le = [0u8; 8];
                le.copy_from_slice(b);
                <T as Float>::from_f64(f64::from_le_bytes(le))
            })
            .collect(),
    };
    // `SafeTensors::deserialize` has checked that the byte length matches shape and dtype.
    ArrayD::from_shape_vec(IxDyn(view.shape()), data).map_err(|_| IoError::Format {
        path: path.to_path_buf(),
        source: SafeTensorError::TensorInvalidInfo,
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

/// The temporary file [`write_atomic`] writes before renaming it to `path`:
/// `.<file name>.<process id>.tmp` in the same folder (same file system, so the rename is
/// atomic).
pub(crate) fn temp_path_for(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `bytes` to `path` atomically: to a temporary file in the same folder, flushed to
/// disk, then renamed over `path`. On error the temporary file is removed and whatever was
/// at `path` is untouched.
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
    let temp = temp_path_for(path);
    // `create_new`: never follow or clobber something already at the temporary path.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|source| IoError::Io {
            action: "create temporary file",
            path: temp.clone(),
            source,
        })?;
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

    use super::*;

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
        assert!(!temp_path_for(&path).exists());
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn f64_round_trip_is_exact() {
        let dir = temp_dir("f64");
        let path = dir.join("w.safetensors");
        let p = Param::new(
            "a.b",
            array![[0.1_f64, -1e300], [f64::MIN_POSITIVE, 3.0]].into_dyn(),
        );
        save_weights(&path, &[&p]).unwrap();
        let back = read_weights::<f64>(&path).unwrap();
        assert_eq!(back["a.b"], *p.value());
        fs::remove_dir_all(&dir).unwrap();
    }
}
