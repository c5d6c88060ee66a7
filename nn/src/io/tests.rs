//! Unit tests of saving and loading (the public round trips live in the suite).

use ndarray::array;

use super::*;

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tapegrad-io-unit-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
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
