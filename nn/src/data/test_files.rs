//! Files for the readers' tests: a temporary folder, gzip, IDX bytes.

use std::io::Write;
use std::path::PathBuf;

use flate2::Compression;
use flate2::write::GzEncoder;
use ndarray::{Array3, array};

/// A folder of its own under the system temp dir, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("tapegrad-data-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(crate) fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

pub(crate) fn idx(header: &[u32], body: &[u8]) -> Vec<u8> {
    let mut bytes: Vec<u8> = header.iter().flat_map(|v| v.to_be_bytes()).collect();
    bytes.extend_from_slice(body);
    bytes
}

/// 3 images of 2x2 pixels.
pub(crate) fn small_images() -> Vec<u8> {
    idx(
        &[2051, 3, 2, 2],
        &[0, 1, 2, 3, 10, 11, 12, 13, 255, 254, 253, 252],
    )
}

pub(crate) fn small_labels() -> Vec<u8> {
    idx(&[2049, 3], &[7, 0, 9])
}

pub(crate) fn expected_images() -> Array3<u8> {
    array![
        [[0, 1], [2, 3]],
        [[10, 11], [12, 13]],
        [[255, 254], [253, 252]]
    ]
}
