//! The mutation test: corrupt checkpoints never panic the loaders nor load wrong values.

use std::collections::BTreeMap;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::Instant;

use ndarray::ArrayD;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tapegrad_autograd::{Float, Param};
use tapegrad_nn::io::{
    IoError, load_weights, load_weights_from_bytes, read_weights, read_weights_from_bytes,
    save_weights,
};

use super::reference::{RefTensor, reference_read, same_values};
use super::{file_with_header, params, scratch_dir, split_file};

/// A valid checkpoint to corrupt, and parameters shaped like it.
struct Base {
    bytes: Vec<u8>,
    names_shapes: Vec<(String, Vec<usize>)>,
    f64: bool,
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
