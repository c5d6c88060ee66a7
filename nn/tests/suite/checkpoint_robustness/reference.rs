//! The reference reader: what a checkpoint's bytes say, read without the loaders.

use std::collections::BTreeMap;

use ndarray::ArrayD;
use serde_json::Value;
use tapegrad_autograd::Float;

/// A tensor as the reference reader sees it: dtype, shape, little-endian bytes.
pub(super) type RefTensor = (String, Vec<usize>, Vec<u8>);

/// A straightforward safetensors reader, for F32 and F64 tensors: `None` for anything it
/// does not understand, or that breaks the format's rules.
pub(super) fn reference_read(bytes: &[u8]) -> Option<BTreeMap<String, RefTensor>> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let n = usize::try_from(n).ok()?;
    let header = bytes.get(8..8_usize.checked_add(n)?)?;
    let data = &bytes[8 + n..];
    let Value::Object(map) = serde_json::from_slice::<Value>(header).ok()? else {
        return None;
    };
    let mut tensors = BTreeMap::new();
    let mut spans = Vec::new();
    for (name, info) in map {
        if name == "__metadata__" {
            continue;
        }
        let dtype = info.get("dtype")?.as_str()?.to_string();
        let size = match dtype.as_str() {
            "F32" => 4,
            "F64" => 8,
            _ => return None,
        };
        let shape = info
            .get("shape")?
            .as_array()?
            .iter()
            .map(|d| usize::try_from(d.as_u64()?).ok())
            .collect::<Option<Vec<usize>>>()?;
        let offsets = info.get("data_offsets")?.as_array()?;
        if offsets.len() != 2 {
            return None;
        }
        let begin = usize::try_from(offsets[0].as_u64()?).ok()?;
        let end = usize::try_from(offsets[1].as_u64()?).ok()?;
        let raw = data.get(begin..end)?;
        let count = shape.iter().try_fold(1_usize, |a, &d| a.checked_mul(d))?;
        if count.checked_mul(size)? != raw.len() {
            return None;
        }
        spans.push((begin, end));
        tensors.insert(name, (dtype, shape, raw.to_vec()));
    }
    spans.sort_unstable();
    let mut at = 0;
    for (begin, end) in spans {
        if begin != at {
            return None;
        }
        at = end;
    }
    (at == data.len()).then_some(tensors)
}

/// The values of a reference tensor, as f64.
pub(super) fn decode(tensor: &RefTensor) -> Vec<f64> {
    let (dtype, _, raw) = tensor;
    if dtype == "F32" {
        raw.chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap())))
            .collect()
    } else {
        raw.chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }
}

/// Whether `array` holds exactly the reference tensor's values (NaNs match any NaN: a
/// signalling NaN may come back quieted).
pub(super) fn same_values<T: Float>(array: &ArrayD<T>, tensor: &RefTensor) -> bool {
    let expected = decode(tensor);
    tensor.0 == T::DTYPE
        && array.shape() == tensor.1.as_slice()
        && array.len() == expected.len()
        && array.iter().zip(&expected).all(|(a, e)| {
            let a = Float::to_f64(*a);
            (a.is_nan() && e.is_nan()) || a.to_bits() == e.to_bits()
        })
}
