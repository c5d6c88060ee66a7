//! Robustness of checkpoint files: corrupt files never panic the loaders and never load
//! values other than the file's bytes say; a save killed at any moment leaves the old or the
//! new checkpoint; temporary files of killed saves neither pile up nor block later saves.

use std::collections::BTreeMap;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tapegrad_autograd::{Float, Param};
use tapegrad_nn::io::{
    FormatError, IoError, load_weights, load_weights_from_bytes, read_weights,
    read_weights_from_bytes, save_weights,
};

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

// ---------------------------------------------------------------------------------------
// The reference reader.
// ---------------------------------------------------------------------------------------

/// A tensor as the reference reader sees it: dtype, shape, little-endian bytes.
type RefTensor = (String, Vec<usize>, Vec<u8>);

/// A straightforward safetensors reader, for F32 and F64 tensors: `None` for anything it
/// does not understand, or that breaks the format's rules.
fn reference_read(bytes: &[u8]) -> Option<BTreeMap<String, RefTensor>> {
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
fn decode(tensor: &RefTensor) -> Vec<f64> {
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
fn same_values<T: Float>(array: &ArrayD<T>, tensor: &RefTensor) -> bool {
    let expected = decode(tensor);
    tensor.0 == T::DTYPE
        && array.shape() == tensor.1.as_slice()
        && array.len() == expected.len()
        && array.iter().zip(&expected).all(|(a, e)| {
            let a = Float::to_f64(*a);
            (a.is_nan() && e.is_nan()) || a.to_bits() == e.to_bits()
        })
}

// ---------------------------------------------------------------------------------------
// The mutation test.
// ---------------------------------------------------------------------------------------

/// A valid checkpoint to corrupt, and parameters shaped like it.
struct Base {
    bytes: Vec<u8>,
    names_shapes: Vec<(String, Vec<usize>)>,
    f64: bool,
}

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

fn base<T: Float>(dir: &Path, tag: &str, spec: &[(&str, Vec<usize>)]) -> Base {
    let ps = params::<T>(spec, 1);
    let path = dir.join(format!("base-{tag}.safetensors"));
    save_weights(&path, &ps.iter().collect::<Vec<_>>()).unwrap();
    let bytes = fs::read(&path).unwrap();
    // The base itself loads, and the reference reader agrees.
    let back = read_weights::<T>(&path).unwrap();
    let reference = reference_read(&bytes).expect("the reference reader reads a valid file");
    for p in &ps {
        assert_eq!(&back[p.name()], p.value());
        assert!(same_values(p.value(), &reference[p.name()]));
    }
    Base {
        bytes,
        names_shapes: spec
            .iter()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect(),
        f64: T::DTYPE == "F64",
    }
}

/// A number that breaks things, as JSON text.
fn evil_number(rng: &mut StdRng) -> String {
    const EVIL: &[&str] = &[
        "18446744073709551615",
        "18446744073709551607",
        "18446744073709551616",
        "9223372036854775808",
        "4294967296",
        "4611686018427387904",
        "-1",
        "-0",
        "1.5",
        "1e3",
        "1e400",
        "0",
        "1",
        "\"3\"",
        "null",
        "[]",
    ];
    if rng.random_bool(0.2) {
        rng.random::<u64>().to_string()
    } else {
        EVIL[rng.random_range(0..EVIL.len())].to_string()
    }
}

/// Rebuilds a file from a header object and data (header length made consistent).
fn rebuild(map: &serde_json::Map<String, Value>, data: &[u8]) -> Vec<u8> {
    file_with_header(&serde_json::to_string(map).unwrap(), data)
}

/// One random corruption of `bytes` (a valid file).
fn mutate(bytes: &[u8], rng: &mut StdRng) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let (n, header, data) = split_file(bytes);
    let header_map = || match serde_json::from_slice::<Value>(header).unwrap() {
        Value::Object(map) => map,
        _ => unreachable!(),
    };
    let tensor_names = || -> Vec<String> {
        header_map()
            .keys()
            .filter(|k| *k != "__metadata__")
            .cloned()
            .collect()
    };
    match rng.random_range(0..12) {
        // Bit flips anywhere.
        0 => {
            for _ in 0..rng.random_range(1..=4) {
                let i = rng.random_range(0..out.len());
                out[i] ^= 1 << rng.random_range(0..8);
            }
        }
        // Byte overwrites anywhere.
        1 => {
            for _ in 0..rng.random_range(1..=8) {
                let i = rng.random_range(0..out.len());
                out[i] = rng.random();
            }
        }
        // Byte overwrites in the header only (digits mostly: still valid JSON, other numbers).
        2 => {
            for _ in 0..rng.random_range(1..=3) {
                let i = 8 + rng.random_range(0..n);
                out[i] = if rng.random_bool(0.8) {
                    b"0123456789"[rng.random_range(0..10)]
                } else {
                    b",:[]{}\"-. e"[rng.random_range(0..11)]
                };
            }
        }
        // Truncation.
        3 => out.truncate(rng.random_range(0..out.len())),
        // Extension.
        4 => {
            for _ in 0..rng.random_range(1..=64) {
                out.push(rng.random());
            }
        }
        // Header length edits.
        5 => {
            let len = out.len() as u64;
            let candidates = [
                0,
                1,
                n as u64 - 1,
                n as u64 + 1,
                n as u64 + 8,
                len,
                len - 8,
                len - 7,
                u64::MAX,
                u64::MAX - 7,
                1 << 63,
                100_000_000,
                100_000_001,
                rng.random(),
            ];
            let v = candidates[rng.random_range(0..candidates.len())];
            out[..8].copy_from_slice(&v.to_le_bytes());
        }
        // A number in a tensor's entry replaced by an evil one (textually, so that numbers
        // beyond u64 and floats get through).
        6 | 7 => {
            let names = tensor_names();
            let name = &names[rng.random_range(0..names.len())];
            let mut map = header_map();
            let field = if rng.random_bool(0.5) {
                "shape"
            } else {
                "data_offsets"
            };
            let marker = "\"@@EVIL@@\"";
            let entry = map[name].as_object_mut().unwrap();
            let arr = entry[field].as_array_mut().unwrap();
            if arr.is_empty() || rng.random_bool(0.1) {
                arr.push(Value::String("@@EVIL@@".into()));
            } else {
                let i = rng.random_range(0..arr.len());
                arr[i] = Value::String("@@EVIL@@".into());
            }
            let json = serde_json::to_string(&map)
                .unwrap()
                .replace(marker, &evil_number(rng));
            out = file_with_header(&json, data);
        }
        // Offsets swapped between two tensors, or within one, or shifted.
        8 => {
            let names = tensor_names();
            let mut map = header_map();
            let a = &names[rng.random_range(0..names.len())];
            let b = &names[rng.random_range(0..names.len())];
            if a == b {
                let arr = map[a]["data_offsets"].as_array_mut().unwrap();
                if rng.random_bool(0.5) {
                    arr.swap(0, 1);
                } else {
                    let shift = rng.random_range(1..=8_u64);
                    for v in arr.iter_mut() {
                        *v = Value::from(v.as_u64().unwrap() + shift);
                    }
                }
            } else {
                let oa = map[a]["data_offsets"].clone();
                let ob = map[b]["data_offsets"].clone();
                map[a]["data_offsets"] = ob;
                map[b]["data_offsets"] = oa;
            }
            out = rebuild(&map, data);
        }
        // Dtype edits, shape edits that keep the size, dropped fields, bad metadata.
        9 => {
            let names = tensor_names();
            let mut map = header_map();
            let name = &names[rng.random_range(0..names.len())];
            match rng.random_range(0..5) {
                0 => {
                    const DTYPES: &[&str] = &["F32", "F64", "F16", "BF16", "I64", "U8", "X", ""];
                    map[name]["dtype"] = Value::from(DTYPES[rng.random_range(0..DTYPES.len())]);
                }
                1 => {
                    // Same element count, another shape (a reshape the loader must refuse
                    // for load_weights, accept for read_weights).
                    let shape = map[name]["shape"].as_array().unwrap();
                    let count: u64 = shape.iter().map(|d| d.as_u64().unwrap()).product();
                    map[name]["shape"] = Value::from(vec![count]);
                }
                2 => {
                    let field = ["dtype", "shape", "data_offsets"][rng.random_range(0..3)];
                    map[name].as_object_mut().unwrap().remove(field);
                }
                3 => {
                    map.insert("__metadata__".into(), serde_json::json!({"producer": 3}));
                }
                _ => {
                    map[name] = Value::from(vec![1, 2]);
                }
            }
            out = rebuild(&map, data);
        }
        // A duplicated key (textually: serde_json's map would merge it).
        10 => {
            let names = tensor_names();
            let name = &names[rng.random_range(0..names.len())];
            let map = header_map();
            let entry = serde_json::to_string(&map[name]).unwrap();
            let json = serde_json::to_string(&map).unwrap();
            let json = format!(
                "{{{}:{entry},{}",
                serde_json::to_string(name).unwrap(),
                &json[1..]
            );
            out = file_with_header(&json, data);
        }
        // Two corruptions.
        _ => {
            let once = mutate(bytes, rng);
            out = if once.len() >= 8 && rng.random_bool(0.5) {
                // A byte-level one on top of whatever the first did.
                let mut twice = once;
                let i = rng.random_range(0..twice.len());
                twice[i] = rng.random();
                twice
            } else {
                mutate(&once_or(bytes, once), rng)
            };
        }
    }
    out
}

/// `candidate` if it is still a file whose header parses as an object (so that the
/// structured mutations can apply to it), else `fallback`.
fn once_or(fallback: &[u8], candidate: Vec<u8>) -> Vec<u8> {
    let parses = candidate.len() >= 8
        && reference_read(&candidate).is_some()
        && serde_json::from_slice::<Value>(split_file(&candidate).1).is_ok();
    if parses { candidate } else { fallback.to_vec() }
}

/// Feeds `bytes` to every public loader; returns the problems found (panics, `Ok`s that
/// disagree with the reference reader, parameters changed by a failed load).
fn check_all_loaders(base: &Base, bytes: &[u8], path: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let reference = reference_read(bytes);
    // A new file each time: rewriting a truncated file makes ext4 flush it on close
    // (`auto_da_alloc`), 4 ms a file.
    let _ = fs::remove_file(path);
    fs::write(path, bytes).unwrap();
    let mut note = |what: &str, outcome: std::thread::Result<Option<String>>| match outcome {
        Err(_) => problems.push(format!("{what}: panicked")),
        Ok(Some(problem)) => problems.push(format!("{what}: {problem}")),
        Ok(None) => {}
    };

    fn check_read<T: Float>(
        result: Result<BTreeMap<String, ArrayD<T>>, IoError>,
        reference: &Option<BTreeMap<String, RefTensor>>,
    ) -> Option<String> {
        let map = result.ok()?;
        let Some(reference) = reference else {
            return Some("Ok, but the reference reader rejects the file".into());
        };
        let agree = map.len() == reference.len()
            && map
                .iter()
                .all(|(name, array)| reference.get(name).is_some_and(|t| same_values(array, t)));
        (!agree).then(|| "Ok, with values other than the reference reader's".into())
    }

    fn check_load<T: Float>(
        base: &Base,
        bytes: &[u8],
        path: &Path,
        from_path: bool,
        reference: &Option<BTreeMap<String, RefTensor>>,
    ) -> Option<String> {
        let spec: Vec<(&str, Vec<usize>)> = base
            .names_shapes
            .iter()
            .map(|(n, s)| (n.as_str(), s.clone()))
            .collect();
        let mut ps = params::<T>(&spec, 99);
        let before: Vec<ArrayD<T>> = ps.iter().map(|p| p.value().clone()).collect();
        let mut refs: Vec<&mut Param<T>> = ps.iter_mut().collect();
        let result = if from_path {
            load_weights(path, &mut refs)
        } else {
            load_weights_from_bytes(path, bytes, &mut refs)
        };
        match result {
            Err(_) => {
                let unchanged = ps.iter().zip(&before).all(|(p, b)| p.value() == b);
                (!unchanged).then(|| "failed, but changed parameters".into())
            }
            Ok(()) => {
                let Some(reference) = reference else {
                    return Some("Ok, but the reference reader rejects the file".into());
                };
                let agree = reference.len() == ps.len()
                    && ps.iter().all(|p| {
                        reference
                            .get(p.name())
                            .is_some_and(|t| same_values(p.value(), t))
                    });
                (!agree).then(|| "Ok, with values other than the reference reader's".into())
            }
        }
    }

    let r = &reference;
    note(
        "read_weights::<f32>",
        catch_unwind(|| check_read(read_weights::<f32>(path), r)),
    );
    note(
        "read_weights::<f64>",
        catch_unwind(|| check_read(read_weights::<f64>(path), r)),
    );
    note(
        "read_weights_from_bytes::<f32>",
        catch_unwind(|| check_read(read_weights_from_bytes::<f32>(path, bytes), r)),
    );
    for from_path in [true, false] {
        let what = if from_path {
            "load_weights"
        } else {
            "load_weights_from_bytes"
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            if base.f64 {
                check_load::<f64>(base, bytes, path, from_path, r)
            } else {
                check_load::<f32>(base, bytes, path, from_path, r)
            }
        }));
        note(what, outcome);
    }
    problems
}

#[test]
fn thousands_of_corrupt_checkpoints_never_panic_nor_load_wrong_values() {
    let start = Instant::now();
    let dir = scratch_dir("mutation");
    let bases = [
        base::<f32>(
            &dir,
            "f32",
            &[
                ("dense_0.kernel", vec![3, 4]),
                ("dense_0.bias", vec![4]),
                ("bias_twin", vec![4]),
                ("scale", vec![]),
                ("empty", vec![0, 3]),
            ],
        ),
        base::<f64>(
            &dir,
            "f64",
            &[
                ("w", vec![2, 2]),
                ("v", vec![4]),
                ("s", vec![]),
                ("e", vec![0]),
            ],
        ),
        base::<f32>(&dir, "one", &[("only", vec![5])]),
    ];
    let path = dir.join("corrupt.safetensors");
    let mut rng = StdRng::seed_from_u64(0x7a9e_67ad);
    let (mut tried, mut loaded_ok, mut unchanged) = (0, 0, 0);
    let mut problems = Vec::new();
    for round in 0..4_800 {
        let base = &bases[round % bases.len()];
        let bytes = mutate(&base.bytes, &mut rng);
        tried += 1;
        unchanged += usize::from(bytes == base.bytes);
        if read_weights_from_bytes::<f32>(&path, &bytes).is_ok()
            || read_weights_from_bytes::<f64>(&path, &bytes).is_ok()
        {
            loaded_ok += 1;
        }
        for problem in check_all_loaders(base, &bytes, &path) {
            if problems.len() < 10 {
                let keep = dir.join(format!("problem-{round}.safetensors"));
                fs::write(&keep, &bytes).unwrap();
                problems.push(format!("round {round} ({}): {problem}", keep.display()));
            }
        }
    }
    eprintln!(
        "mutation test: {tried} files ({unchanged} unchanged by their mutation, {loaded_ok} \
         loaded), {} problems, {:?}",
        problems.len(),
        start.elapsed()
    );
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(tried >= 2_000);
    fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------
// Hand-made malformed headers.
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Temporary files.
// ---------------------------------------------------------------------------------------

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
