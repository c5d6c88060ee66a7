//! Hand-made malformed headers: each is a typed format error, never a panic.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use tapegrad_autograd::Param;
use tapegrad_nn::io::{
    FormatError, IoError, load_weights, load_weights_from_bytes, read_weights,
    read_weights_from_bytes,
};

use super::{file_with_header, scratch_dir};

/// Every public loader returns `IoError::Format` with a source matching `expected`, without
/// panicking (whatever `debug_assertions`).
fn assert_format_error(dir: &Path, bytes: &[u8], expected: fn(&FormatError) -> bool) {
    let path = dir.join("malformed.safetensors");
    fs::write(&path, bytes).unwrap();
    let check = |what: &str, result: std::thread::Result<Result<(), IoError>>| match result {
        Err(_) => panic!("{what} panicked on {bytes:?}"),
        Ok(Err(IoError::Format { source, .. })) if expected(&source) => {}
        Ok(other) => panic!("{what} on {bytes:?}: {other:?}"),
    };
    let mut p = Param::new("t", ArrayD::<f32>::zeros(IxDyn(&[1])));
    check(
        "load_weights",
        catch_unwind(AssertUnwindSafe(|| load_weights(&path, &mut [&mut p]))),
    );
    check(
        "load_weights_from_bytes",
        catch_unwind(AssertUnwindSafe(|| {
            load_weights_from_bytes(&path, bytes, &mut [&mut p])
        })),
    );
    check(
        "read_weights",
        catch_unwind(|| read_weights::<f32>(&path).map(|_| ())),
    );
    check(
        "read_weights_from_bytes",
        catch_unwind(|| read_weights_from_bytes::<f64>(&path, bytes).map(|_| ())),
    );
}

#[test]
fn the_99_byte_checkpoint_and_its_relatives_are_format_errors_not_panics() {
    let dir = scratch_dir("malformed");
    let the_99 = file_with_header(
        r#"{"t":{"data_offsets":[0,18446744073709551607],"dtype":"U8","shape":[18446744073709551607]}}"#,
        &[],
    );
    assert_eq!(the_99.len(), 99);
    assert_format_error(&dir, &the_99, |e| {
        matches!(
            e,
            FormatError::OffsetsPastEnd {
                end: 18446744073709551607,
                data_len: 0,
                ..
            }
        )
    });

    let entry = |dtype: &str, shape: &str, offsets: &str| {
        format!(r#"{{"t":{{"dtype":"{dtype}","shape":{shape},"data_offsets":{offsets}}}}}"#)
    };
    type Case = (String, Vec<u8>, fn(&FormatError) -> bool);
    let cases: Vec<Case> = vec![
        // Offsets past the end of the data.
        (entry("F32", "[2]", "[0,8]"), vec![0; 4], |e| {
            matches!(e, FormatError::OffsetsPastEnd { .. })
        }),
        (entry("U8", "[1]", "[18446744073709551615,18446744073709551615]"), vec![], |e| {
            matches!(e, FormatError::OffsetsPastEnd { .. })
        }),
        // Element count times dtype size overflowing.
        (entry("F32", "[4294967296,4294967296,2]", "[0,0]"), vec![], |e| {
            matches!(e, FormatError::ShapeOverflow { .. })
        }),
        (entry("F64", "[2305843009213693952]", "[0,0]"), vec![], |e| {
            matches!(e, FormatError::ShapeOverflow { .. })
        }),
        (entry("F32", "[0,9223372036854775807,9223372036854775807]", "[0,0]"), vec![], |e| {
            matches!(e, FormatError::ShapeOverflow { .. })
        }),
        // Negative, fractional, exponent and too-large numbers.
        (entry("F32", "[-1]", "[0,4]"), vec![0; 4], |e| {
            matches!(e, FormatError::BadField { field: "shape", .. })
        }),
        (entry("F32", "[1.5]", "[0,4]"), vec![0; 4], |e| {
            matches!(e, FormatError::BadField { field: "shape", .. })
        }),
        (entry("F32", "[1e0]", "[0,4]"), vec![0; 4], |e| {
            matches!(e, FormatError::BadField { field: "shape", .. })
        }),
        (entry("F32", "[18446744073709551616]", "[0,4]"), vec![0; 4], |e| {
            matches!(e, FormatError::BadField { field: "shape", .. })
        }),
        (entry("F32", "[1]", "[-4,0]"), vec![0; 4], |e| {
            matches!(e, FormatError::BadField { field: "data_offsets", .. })
        }),
        (entry("F32", "[1]", "[0,4,8]"), vec![0; 4], |e| {
            matches!(e, FormatError::BadField { field: "data_offsets", .. })
        }),
        // Reversed offsets, size mismatch, gaps, overlaps, trailing bytes.
        (entry("F32", "[1]", "[4,0]"), vec![0; 4], |e| {
            matches!(e, FormatError::ReversedOffsets { .. })
        }),
        (entry("F32", "[2]", "[0,4]"), vec![0; 4], |e| {
            matches!(e, FormatError::SizeMismatch { expected: 8, .. })
        }),
        (entry("F32", "[1]", "[4,8]"), vec![0; 8], |e| {
            matches!(e, FormatError::NotContiguous { begin: 4, expected: 0, .. })
        }),
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#.into(),
            vec![0; 8],
            |e| matches!(e, FormatError::NotContiguous { .. }),
        ),
        (entry("F32", "[1]", "[0,4]"), vec![0; 5], |e| {
            matches!(e, FormatError::TrailingData { covered: 4, data_len: 5 })
        }),
        // Keys, dtype, metadata, JSON.
        (
            r#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#.into(),
            vec![0; 8],
            |e| matches!(e, FormatError::DuplicateKey { name } if name == "t"),
        ),
        (entry("F31", "[1]", "[0,4]"), vec![0; 4], |e| {
            matches!(e, FormatError::UnknownDtype { .. })
        }),
        (r#"{"__metadata__":{"a":1}}"#.into(), vec![], |e| {
            matches!(e, FormatError::BadMetadata)
        }),
        (r#"{"t":{"dtype":"F32","shape":[1]}}"#.into(), vec![0; 4], |e| {
            matches!(e, FormatError::BadField { field: "data_offsets", .. })
        }),
        ("[1,2,3]".into(), vec![], |e| {
            matches!(e, FormatError::HeaderNotJson { .. })
        }),
        ("{\"t\":".into(), vec![], |e| {
            matches!(e, FormatError::HeaderNotJson { .. })
        }),
    ];
    for (json, data, expected) in cases {
        assert_format_error(&dir, &file_with_header(&json, &data), expected);
    }

    // Header lengths: u64::MAX, past the file, over the limit; a file shorter than 8 bytes;
    // a header that is not UTF-8.
    let valid = file_with_header(&entry("F32", "[1]", "[0,4]"), &[0; 4]);
    for (len, expected) in [
        (
            u64::MAX,
            (|e| matches!(e, FormatError::HeaderTooLarge { .. })) as fn(&_) -> bool,
        ),
        (100_000_001, |e| {
            matches!(e, FormatError::HeaderTooLarge { .. })
        }),
        (valid.len() as u64 - 7, |e| {
            matches!(e, FormatError::HeaderPastEnd { .. })
        }),
        (1_000_000, |e| {
            matches!(e, FormatError::HeaderPastEnd { .. })
        }),
    ] {
        let mut bytes = valid.clone();
        bytes[..8].copy_from_slice(&len.to_le_bytes());
        assert_format_error(&dir, &bytes, expected);
    }
    for cut in 0..8 {
        assert_format_error(&dir, &valid[..cut], |e| {
            matches!(e, FormatError::TooShort { .. })
        });
    }
    let mut not_utf8 = valid.clone();
    not_utf8[9] = 0xff;
    assert_format_error(&dir, &not_utf8, |e| {
        matches!(e, FormatError::HeaderNotUtf8 { valid_up_to: 1 })
    });
    fs::remove_dir_all(&dir).unwrap();
}
