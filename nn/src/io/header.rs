//! Validation of a safetensors file's header, before any tensor data is touched.
//!
//! A safetensors file is an 8-byte little-endian header length `N`, `N` bytes of a UTF-8
//! JSON object, then the data buffer. The object maps each tensor name to
//! `{"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}` (offsets relative to
//! the data buffer), plus an optional `"__metadata__"` map of strings to strings.
//!
//! [`parse_header`] checks everything with checked arithmetic and returns a typed
//! [`FormatError`] (never panics, whatever the bytes): the header fits in the file and under
//! [`MAX_HEADER_LEN`]; it is a JSON object with unique keys; every tensor has a known dtype,
//! a shape of non-negative integers whose element count times the dtype size fits in
//! `usize` and equals `end - begin`; `begin <= end <=` the data length; and the tensors,
//! sorted by offset, cover the data buffer contiguously with no gap, overlap or trailing
//! bytes (as the safetensors format requires).

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// The largest header accepted, in bytes: 100 MB, the limit of the reference safetensors
/// implementation.
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// Why some bytes are not a valid safetensors file (the source of
/// [`IoError::Format`](crate::io::IoError::Format)).
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The file is shorter than the 8 bytes of the header length.
    #[error("the file has {len} bytes, fewer than the 8 of the header length")]
    TooShort {
        /// The file's length in bytes.
        len: u64,
    },

    /// The header length exceeds [`MAX_HEADER_LEN`].
    #[error("the header length {header_len} exceeds the limit of {MAX_HEADER_LEN} bytes")]
    HeaderTooLarge {
        /// The header length read from the file.
        header_len: u64,
    },

    /// The header length exceeds the bytes that follow it (a truncated file, or a corrupt
    /// length).
    #[error("the header length {header_len} exceeds the {available} bytes that follow it")]
    HeaderPastEnd {
        /// The header length read from the file.
        header_len: u64,
        /// The file's length minus 8.
        available: u64,
    },

    /// The header is not valid UTF-8.
    #[error("the header is not UTF-8 (invalid byte at offset {valid_up_to})")]
    HeaderNotUtf8 {
        /// The length of the valid UTF-8 prefix.
        valid_up_to: u64,
    },

    /// The header is not a JSON object.
    #[error("the header is not a JSON object: {message}")]
    HeaderNotJson {
        /// The JSON parser's message.
        message: String,
    },

    /// The header names a key (a tensor, or `__metadata__`) twice.
    #[error("the header has key `{name}` twice")]
    DuplicateKey {
        /// The repeated key.
        name: String,
    },

    /// `__metadata__` is not an object whose values are all strings.
    #[error("`__metadata__` is not a map of strings to strings")]
    BadMetadata,

    /// A tensor's entry lacks a field, or a field has the wrong JSON type (for example a
    /// negative or fractional number in `shape`).
    #[error("tensor `{name}`: `{field}` {problem}")]
    BadField {
        /// The tensor's name.
        name: String,
        /// The field (`dtype`, `shape`, `data_offsets`, or the entry itself).
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },

    /// A tensor's dtype is not one of the safetensors dtypes.
    #[error("tensor `{name}` has unknown dtype `{dtype}`")]
    UnknownDtype {
        /// The tensor's name.
        name: String,
        /// The dtype in the file.
        dtype: String,
    },

    /// A tensor's byte size (element count times dtype size) overflows.
    #[error("tensor `{name}`: shape {shape:?} of {dtype} overflows the address space")]
    ShapeOverflow {
        /// The tensor's name.
        name: String,
        /// The tensor's shape in the file.
        shape: Vec<u64>,
        /// The tensor's dtype.
        dtype: String,
    },

    /// A tensor's `data_offsets` end before they begin.
    #[error("tensor `{name}` has data offsets [{begin}, {end}], which end before they begin")]
    ReversedOffsets {
        /// The tensor's name.
        name: String,
        /// The start offset.
        begin: u64,
        /// The end offset.
        end: u64,
    },

    /// A tensor's `data_offsets` reach past the data buffer.
    #[error("tensor `{name}` spans data bytes {begin}..{end}, past the {data_len} data bytes")]
    OffsetsPastEnd {
        /// The tensor's name.
        name: String,
        /// The start offset.
        begin: u64,
        /// The end offset.
        end: u64,
        /// The data buffer's length.
        data_len: u64,
    },

    /// A tensor's `data_offsets` span a different number of bytes than its shape and dtype
    /// need.
    #[error(
        "tensor `{name}` spans data bytes {begin}..{end}, but its shape and dtype need \
         {expected} bytes"
    )]
    SizeMismatch {
        /// The tensor's name.
        name: String,
        /// The start offset.
        begin: u64,
        /// The end offset.
        end: u64,
        /// The shape's element count times the dtype size.
        expected: u64,
    },

    /// Sorted by offset, a tensor does not start where the previous one ends (a gap or an
    /// overlap in the data buffer).
    #[error(
        "tensor `{name}` starts at data byte {begin}, but the tensors before it end at \
         {expected}: tensors must cover the data contiguously"
    )]
    NotContiguous {
        /// The tensor's name.
        name: String,
        /// Its start offset.
        begin: u64,
        /// Where the previous tensor ends (0 for the first).
        expected: u64,
    },

    /// The tensors end before the data buffer does.
    #[error("the tensors cover {covered} data bytes, but the data buffer has {data_len}")]
    TrailingData {
        /// Where the last tensor ends.
        covered: u64,
        /// The data buffer's length.
        data_len: u64,
    },
}

/// One tensor of a validated header.
#[derive(Debug, Clone)]
pub(crate) struct TensorInfo {
    /// The tensor's name.
    pub name: String,
    /// The dtype's safetensors name (`"F32"`, `"F64"`, ...).
    pub dtype: String,
    /// The shape.
    pub shape: Vec<usize>,
    /// The tensor's bytes within the whole file (not just the data buffer): in bounds.
    pub range: std::ops::Range<usize>,
}

/// A validated header.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    /// The tensors, in data order.
    pub tensors: Vec<TensorInfo>,
    /// The `__metadata__` map (empty when the file has none).
    pub metadata: BTreeMap<String, String>,
}

/// The size in bytes of one element of a safetensors dtype, or `None` for an unknown one.
pub(crate) fn dtype_size(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => 1,
        "I16" | "U16" | "F16" | "BF16" => 2,
        "I32" | "U32" | "F32" => 4,
        "I64" | "U64" | "F64" => 8,
        _ => return None,
    })
}

/// Parses and validates the header of the safetensors file `bytes` (see the
/// [module documentation](self)). On success every tensor's `range` lies within `bytes`.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<Header, FormatError> {
    let file_len = bytes.len() as u64;
    let Some((len_bytes, rest)) = bytes.split_first_chunk::<8>() else {
        return Err(FormatError::TooShort { len: file_len });
    };
    let header_len = u64::from_le_bytes(*len_bytes);
    if header_len > MAX_HEADER_LEN {
        return Err(FormatError::HeaderTooLarge { header_len });
    }
    let available = rest.len() as u64;
    if header_len > available {
        return Err(FormatError::HeaderPastEnd {
            header_len,
            available,
        });
    }
    // `header_len <= rest.len()`, so it fits in usize.
    let (json, data) = rest.split_at(header_len as usize);
    let data_start = 8 + json.len();
    let data_len = data.len() as u64;

    let json = std::str::from_utf8(json).map_err(|e| FormatError::HeaderNotUtf8 {
        valid_up_to: e.valid_up_to() as u64,
    })?;
    let Entries(entries) = serde_json::from_str(json).map_err(|e| FormatError::HeaderNotJson {
        message: e.to_string(),
    })?;

    let mut seen = HashSet::with_capacity(entries.len());
    let mut tensors = Vec::with_capacity(entries.len());
    let mut spans = Vec::with_capacity(entries.len()); // (begin, end) in the data buffer
    let mut metadata = BTreeMap::new();
    for (name, value) in entries {
        if !seen.insert(name.clone()) {
            return Err(FormatError::DuplicateKey { name });
        }
        if name == "__metadata__" {
            metadata = check_metadata(value)?;
            continue;
        }
        let (info, begin, end) = parse_tensor(name, &value, data_len, data_start)?;
        tensors.push(info);
        spans.push((begin, end));
    }

    // Contiguous cover of the data buffer, in offset order (ties: empty tensors first).
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by_key(|&i| spans[i]);
    let mut covered = 0_u64;
    for &i in &order {
        let (begin, end) = spans[i];
        if begin != covered {
            return Err(FormatError::NotContiguous {
                name: tensors[i].name.clone(),
                begin,
                expected: covered,
            });
        }
        covered = end;
    }
    if covered != data_len {
        return Err(FormatError::TrailingData { covered, data_len });
    }
    let mut slots: Vec<Option<TensorInfo>> = tensors.into_iter().map(Some).collect();
    let tensors = order.iter().filter_map(|&i| slots[i].take()).collect();
    Ok(Header { tensors, metadata })
}

/// `__metadata__`, which must be an object of strings (JSON `null` counts as absent, as in
/// safetensors).
fn check_metadata(value: Value) -> Result<BTreeMap<String, String>, FormatError> {
    match value {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(v) => Ok((k, v)),
                _ => Err(FormatError::BadMetadata),
            })
            .collect(),
        _ => Err(FormatError::BadMetadata),
    }
}

/// One tensor entry, checked against the data buffer's length; also returns its offsets
/// in the data buffer.
fn parse_tensor(
    name: String,
    value: &Value,
    data_len: u64,
    data_start: usize,
) -> Result<(TensorInfo, u64, u64), FormatError> {
    let bad = |field, problem| FormatError::BadField {
        name: name.clone(),
        field,
        problem,
    };
    let Value::Object(fields) = value else {
        return Err(bad("entry", "is not an object"));
    };
    let dtype = match fields.get("dtype") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(bad("dtype", "is not a string")),
        None => return Err(bad("dtype", "is missing")),
    };
    let shape = integers(fields.get("shape")).map_err(|p| bad("shape", p))?;
    let offsets = integers(fields.get("data_offsets")).map_err(|p| bad("data_offsets", p))?;
    let [begin, end] = offsets[..] else {
        return Err(bad("data_offsets", "does not hold exactly two numbers"));
    };
    let Some(size) = dtype_size(&dtype) else {
        return Err(FormatError::UnknownDtype { name, dtype });
    };
    if begin > end {
        return Err(FormatError::ReversedOffsets { name, begin, end });
    }
    if end > data_len {
        return Err(FormatError::OffsetsPastEnd {
            name,
            begin,
            end,
            data_len,
        });
    }
    // Element count times element size, checked; the product of the non-zero dimensions
    // must fit too (ndarray requires it of every array, even an empty one).
    let dims: Option<Vec<usize>> = shape.iter().map(|&d| usize::try_from(d).ok()).collect();
    let nbytes = dims.as_ref().and_then(|dims| {
        let nonzero = dims
            .iter()
            .filter(|&&d| d != 0)
            .try_fold(1_usize, |acc, &d| acc.checked_mul(d))?;
        if nonzero > isize::MAX as usize {
            return None;
        }
        let count = if dims.contains(&0) { 0 } else { nonzero };
        count.checked_mul(size)
    });
    let (Some(dims), Some(nbytes)) = (dims, nbytes) else {
        return Err(FormatError::ShapeOverflow { name, shape, dtype });
    };
    if nbytes as u64 != end - begin {
        return Err(FormatError::SizeMismatch {
            name,
            begin,
            end,
            expected: nbytes as u64,
        });
    }
    // `begin <= end <= data_len`, and data_start + data_len is the file length.
    let range = data_start + begin as usize..data_start + end as usize;
    let info = TensorInfo {
        name,
        dtype,
        shape: dims,
        range,
    };
    Ok((info, begin, end))
}

/// A JSON array of non-negative integers (each at most `u64::MAX`).
fn integers(value: Option<&Value>) -> Result<Vec<u64>, &'static str> {
    match value {
        None => Err("is missing"),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_u64()
                    .ok_or("holds something other than a non-negative integer")
            })
            .collect(),
        Some(_) => Err("is not an array"),
    }
}

/// The entries of a JSON object in file order, duplicates kept (so that they can be
/// rejected; `serde_json::Map` would silently keep the last).
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EntriesVisitor)
    }
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Entries;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Value>()? {
            entries.push(entry);
        }
        Ok(Entries(entries))
    }
}
