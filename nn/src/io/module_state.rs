//! Loading a module's state by its paths, strictly (every tensor, nothing else) or not
//! (PyTorch's `strict=False`: what matches, with the names left out).

use std::collections::HashMap;
use std::path::Path;

use ndarray::ArrayD;
use tapegrad_autograd::Float;

use super::header::TensorInfo;
use super::{IoError, Target, parse, read_checked, read_file, tensor_to_array, unique_names};

/// What a non-strict load ([`Module::load_non_strict`](crate::Module::load_non_strict))
/// left out, as PyTorch's `load_state_dict(strict=False)` returns it: the module's
/// parameters and buffers the file has no tensor for (left as they were), and the file's
/// tensors that match none of them (ignored). Both lists are sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IncompatibleKeys {
    /// The paths of the parameters and buffers the file has no tensor for.
    pub missing: Vec<String>,
    /// The names of the file's tensors that match no parameter or buffer.
    pub unexpected: Vec<String>,
}

/// Loads a module's checkpoint (its parameters and buffers, by path) from `path`, all or
/// nothing. Strict: every parameter and buffer needs its tensor and the file holds no
/// other, and a module with neither parameters nor buffers (not built) is
/// [`IoError::NotBuilt`] unless the file is empty too. Not strict: the tensors present are
/// loaded, the others are reported. Shapes and element types must match in both modes.
pub(crate) fn load_module_state<T: Float, M: crate::Module<T> + ?Sized>(
    path: &Path,
    module: &mut M,
    strict: bool,
) -> Result<IncompatibleKeys, IoError> {
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
    let (values, keys) = if strict {
        if targets.is_empty() && !parse(path, &bytes)?.tensors.is_empty() {
            return Err(IoError::NotBuilt {
                path: path.to_path_buf(),
            });
        }
        let values = read_checked(path, &bytes, &targets)?;
        (
            values.into_iter().map(Some).collect(),
            IncompatibleKeys::default(),
        )
    } else {
        read_present(path, &bytes, &targets)?
    };
    let mut values = values.into_iter();
    for (p, value) in module.params_mut().into_iter().zip(values.by_ref()) {
        if let Some(value) = value {
            *p.value_mut() = value;
        }
    }
    for (b, value) in module.buffers_mut().into_iter().zip(values) {
        if let Some(value) = value {
            *b.value_mut() = value;
        }
    }
    Ok(keys)
}

/// What [`read_present`] returns.
type Present<T> = (Vec<Option<ArrayD<T>>>, IncompatibleKeys);

/// The values for the `targets` the file has a tensor for (`None` for the others, in the
/// targets' order) and what was left out, after checking that no two targets share a name
/// and that every tensor found has its target's shape and element type.
fn read_present<T: Float>(
    path: &Path,
    bytes: &[u8],
    targets: &[Target],
) -> Result<Present<T>, IoError> {
    let file = parse(path, bytes)?;
    let by_name: HashMap<&str, &TensorInfo> =
        file.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let seen = unique_names(targets)?;
    let mut shapes: Vec<(String, Vec<usize>, Vec<usize>)> = targets
        .iter()
        .filter_map(|t| {
            let info = by_name.get(t.name.as_str())?;
            (info.shape != t.shape).then(|| (t.name.clone(), t.shape.clone(), info.shape.clone()))
        })
        .collect();
    shapes.sort();
    match shapes.len() {
        0 => {}
        1 => {
            let (name, expected, found) = shapes.remove(0);
            return Err(IoError::ShapeMismatch {
                path: path.to_path_buf(),
                name,
                expected,
                found,
            });
        }
        _ => {
            return Err(IoError::StateMismatch {
                path: path.to_path_buf(),
                missing: Vec::new(),
                missing_buffers: Vec::new(),
                unexpected: Vec::new(),
                shapes,
            });
        }
    }
    // Convert everything first, then assign: all or nothing.
    let values = targets
        .iter()
        .map(|t| match by_name.get(t.name.as_str()) {
            Some(info) => tensor_to_array::<T>(path, info, bytes).map(Some),
            None => Ok(None),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut missing: Vec<String> = targets
        .iter()
        .filter(|t| !by_name.contains_key(t.name.as_str()))
        .map(|t| t.name.clone())
        .collect();
    let mut unexpected: Vec<String> = file
        .tensors
        .iter()
        .filter(|t| !seen.contains(t.name.as_str()))
        .map(|t| t.name.clone())
        .collect();
    missing.sort();
    unexpected.sort();
    Ok((
        values,
        IncompatibleKeys {
            missing,
            unexpected,
        },
    ))
}
