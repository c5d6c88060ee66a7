//! The IDX format of MNIST and Fashion-MNIST: images, labels, and a split's two files.

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array3, Axis};

use super::input::Input;
use super::{DataError, Dataset};

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// Reads an IDX image file (magic 2051): the result has shape `(n, rows, cols)`.
///
/// The file may be gzip-compressed or raw; gzip is recognised by its magic bytes `1f 8b`,
/// whatever the file name. The header, the data length (neither truncated nor followed by
/// extra bytes) and the dimensions are checked.
///
/// # Errors
///
/// A [`DataError`] naming `path`: [`Io`](DataError::Io), [`Gzip`](DataError::Gzip),
/// [`WrongMagic`](DataError::WrongMagic), [`TruncatedHeader`](DataError::TruncatedHeader),
/// [`BadDimensions`](DataError::BadDimensions), [`Truncated`](DataError::Truncated) or
/// [`TrailingBytes`](DataError::TrailingBytes).
///
/// # Example
///
/// ```
/// use tapegrad_nn::data::read_idx_images;
///
/// // A tiny IDX file: 2 images of 2x3 pixels; header = magic, count, rows, cols (big-endian).
/// let mut bytes = Vec::new();
/// for v in [2051_u32, 2, 2, 3] {
///     bytes.extend_from_slice(&v.to_be_bytes());
/// }
/// bytes.extend_from_slice(&[0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 255]);
/// let path = std::env::temp_dir().join(format!("tapegrad-doc-idx-{}", std::process::id()));
/// std::fs::write(&path, &bytes)?;
///
/// let images = read_idx_images(&path);
/// std::fs::remove_file(&path)?;
/// let images = images?;
/// assert_eq!(images.shape(), &[2, 2, 3]);
/// assert_eq!(images[[1, 0, 0]], 10);
/// assert_eq!(images[[1, 1, 2]], 255);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<Array3<u8>, DataError> {
    const KIND: &str = "IDX images";
    let path = path.as_ref();
    let mut input = Input::open(path)?;
    let header = input.read_header::<4>(IDX_IMAGES_MAGIC, KIND)?;
    let [_, count, rows, cols] = header.map(|v| v as usize);
    if rows == 0 || cols == 0 {
        return Err(DataError::BadDimensions {
            path: path.to_path_buf(),
            reason: format!("{count} images of {rows}x{cols} pixels: images must not be empty"),
        });
    }
    let len = count
        .checked_mul(rows)
        .and_then(|v| v.checked_mul(cols))
        .ok_or_else(|| DataError::BadDimensions {
            path: path.to_path_buf(),
            reason: format!("{count} images of {rows}x{cols} pixels do not fit in memory"),
        })?;
    let pixels = input.read_body(len, "pixel")?;
    Array3::from_shape_vec((count, rows, cols), pixels).map_err(|e| DataError::BadDimensions {
        path: path.to_path_buf(),
        reason: format!("{count} images of {rows}x{cols} pixels: {e}"),
    })
}

/// Reads an IDX label file (magic 2049): the result has shape `(n,)`.
///
/// Gzip or raw, checked like [`read_idx_images`]. Label values are not checked; use
/// [`read_idx_labels_checked`] for that.
///
/// # Errors
///
/// A [`DataError`] naming `path`, as for [`read_idx_images`].
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Array1<u8>, DataError> {
    const KIND: &str = "IDX labels";
    let path = path.as_ref();
    let mut input = Input::open(path)?;
    let [_, count] = input.read_header::<2>(IDX_LABELS_MAGIC, KIND)?;
    let labels = input.read_body(count as usize, "label")?;
    Ok(Array1::from_vec(labels))
}

/// [`read_idx_labels`], then checks that every label is below `num_classes`.
///
/// # Errors
///
/// As [`read_idx_labels`], plus [`DataError::LabelOutOfRange`] for the first label
/// `>= num_classes`.
pub fn read_idx_labels_checked(
    path: impl AsRef<Path>,
    num_classes: usize,
) -> Result<Array1<u8>, DataError> {
    let path = path.as_ref();
    let labels = read_idx_labels(path)?;
    if let Some((index, &value)) = labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| usize::from(l) >= num_classes)
    {
        return Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            index,
            value,
            num_classes,
        });
    }
    Ok(labels)
}

/// Reads an IDX image file and its IDX label file, checking that their counts agree.
///
/// # Errors
///
/// Any error of [`read_idx_images`] / [`read_idx_labels`], or
/// [`DataError::CountMismatch`] naming both files.
pub fn load_idx_dataset(
    images_path: impl AsRef<Path>,
    labels_path: impl AsRef<Path>,
) -> Result<Dataset, DataError> {
    let (images_path, labels_path) = (images_path.as_ref(), labels_path.as_ref());
    let images = read_idx_images(images_path)?;
    let labels = read_idx_labels(labels_path)?;
    if images.len_of(Axis(0)) != labels.len() {
        return Err(DataError::CountMismatch {
            images_path: images_path.to_path_buf(),
            images: images.len_of(Axis(0)),
            labels_path: labels_path.to_path_buf(),
            labels: labels.len(),
        });
    }
    Ok(Dataset { images, labels })
}

/// Loads the split `prefix` (`"train"` or `"t10k"`) of an MNIST-style folder: the files
/// `{prefix}-images-idx3-ubyte[.gz]` and `{prefix}-labels-idx1-ubyte[.gz]`, found with
/// [`find_idx_file`].
///
/// # Errors
///
/// [`DataError::NotFound`] if a file is missing, otherwise as [`load_idx_dataset`].
pub fn load_idx_split(dir: impl AsRef<Path>, prefix: &str) -> Result<Dataset, DataError> {
    let dir = dir.as_ref();
    let images = find_idx_file(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels = find_idx_file(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    load_idx_dataset(images, labels)
}

/// Finds `dir/stem` or, failing that, `dir/stem.gz` (e.g. `train-images-idx3-ubyte[.gz]`).
///
/// The uncompressed name wins when both exist.
///
/// # Errors
///
/// [`DataError::NotFound`] naming `dir` and both names tried.
pub fn find_idx_file(dir: impl AsRef<Path>, stem: &str) -> Result<PathBuf, DataError> {
    let dir = dir.as_ref();
    [stem.to_owned(), format!("{stem}.gz")]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| DataError::NotFound {
            dir: dir.to_path_buf(),
            stem: stem.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_files::{
        TempDir, expected_images, gzip, idx, small_images, small_labels,
    };
    use ndarray::array;

    #[test]
    fn reads_raw_and_gzip_idx_files() {
        let dir = TempDir::new("good");
        let raw_images = dir.write("images", &small_images());
        let raw_labels = dir.write("labels", &small_labels());
        // Gzip is detected by magic bytes, not by the name: no `.gz` on these.
        let gz_images = dir.write("images-compressed", &gzip(&small_images()));
        let gz_labels = dir.write("labels.gz", &gzip(&small_labels()));
        for (images, labels) in [(&raw_images, &raw_labels), (&gz_images, &gz_labels)] {
            assert_eq!(read_idx_images(images).unwrap(), expected_images());
            assert_eq!(read_idx_labels(labels).unwrap(), array![7, 0, 9]);
            let data = load_idx_dataset(images, labels).unwrap();
            assert_eq!(data.len(), 3);
            assert!(!data.is_empty());
            assert_eq!(data.image_shape(), (2, 2));
            assert_eq!(data.labels_usize(), vec![7, 0, 9]);
        }
    }

    #[test]
    fn reads_multi_member_gzip() {
        let dir = TempDir::new("multi");
        let bytes = small_images();
        let mut two = gzip(&bytes[..10]);
        two.extend(gzip(&bytes[10..]));
        let path = dir.write("images.gz", &two);
        assert_eq!(read_idx_images(path).unwrap(), expected_images());
    }

    #[test]
    fn empty_idx_files_are_valid() {
        let dir = TempDir::new("empty-count");
        let images = dir.write("i", &idx(&[2051, 0, 28, 28], &[]));
        let labels = dir.write("l", &idx(&[2049, 0], &[]));
        let data = load_idx_dataset(images, labels).unwrap();
        assert!(data.is_empty());
        assert_eq!(data.to_f32_features().shape(), &[0, 784]);
    }

    #[test]
    fn wrong_magic_names_file_and_numbers() {
        let dir = TempDir::new("magic");
        // A label file passed as images, raw and gzip.
        let raw = dir.write("x", &small_labels());
        let gz = dir.write("x.gz", &gzip(&small_labels()));
        for path in [raw, gz] {
            let err = read_idx_images(&path).unwrap_err();
            assert!(matches!(
                err,
                DataError::WrongMagic {
                    found: 2049,
                    expected: 2051,
                    ..
                }
            ));
            let msg = err.to_string();
            assert_eq!(
                msg,
                format!(
                    "wrong magic number 0x00000801 in {}, expected 2051 (IDX images)",
                    path.display()
                )
            );
        }
        let path = dir.write("y", &small_images());
        let msg = read_idx_labels(&path).unwrap_err().to_string();
        assert!(
            msg.contains("0x00000803") && msg.contains("expected 2049 (IDX labels)"),
            "{msg}"
        );
    }

    #[test]
    fn truncated_header_and_body() {
        let dir = TempDir::new("truncated");
        let empty = dir.write("empty", &[]);
        let err = read_idx_images(&empty).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::TruncatedHeader {
                    expected: 16,
                    found: 0,
                    ..
                }
            ),
            "{err}"
        );

        let short_header = dir.write("short", &small_images()[..9]);
        let err = read_idx_images(&short_header).unwrap_err();
        assert!(
            matches!(err, DataError::TruncatedHeader { found: 9, .. }),
            "{err}"
        );

        let bytes = small_images();
        for (name, contents) in [
            ("body", bytes[..bytes.len() - 3].to_vec()),
            ("body.gz", gzip(&bytes[..bytes.len() - 3])),
        ] {
            let path = dir.write(name, &contents);
            let err = read_idx_images(&path).unwrap_err();
            assert!(
                matches!(
                    err,
                    DataError::Truncated {
                        expected: 12,
                        found: 9,
                        what: "pixel",
                        ..
                    }
                ),
                "{err}"
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "truncated: header promises 12 pixel bytes, found 9 in {}",
                    path.display()
                )
            );
        }

        let labels = dir.write("labels", &small_labels()[..9]);
        let err = read_idx_labels(labels).unwrap_err();
        assert!(matches!(
            err,
            DataError::Truncated {
                expected: 3,
                found: 1,
                what: "label",
                ..
            }
        ));
    }

    #[test]
    fn header_promising_huge_sizes_fails_cleanly() {
        let dir = TempDir::new("huge");
        let path = dir.write("i", &idx(&[2051, u32::MAX, u32::MAX, u32::MAX], &[1, 2, 3]));
        let err = read_idx_images(path).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::BadDimensions { .. } | DataError::Truncated { .. }
            ),
            "{err}"
        );
        // Over MAX_IDX_BYTES: refused before reading or allocating anything.
        let path = dir.write("i2", &idx(&[2051, 1 << 30, 1 << 10, 1 << 10], &[1, 2, 3]));
        let err = read_idx_images(path).unwrap_err();
        assert!(
            matches!(err, DataError::TooLarge { declared, .. } if declared == 1 << 50),
            "{err}"
        );
        let path = dir.write("l", &idx(&[2049, u32::MAX], &[1]));
        let err = read_idx_labels(path).unwrap_err();
        assert!(
            matches!(err, DataError::TooLarge { what: "label", .. }),
            "{err}"
        );
        // Under the limit, raw: read as far as the file goes.
        let path = dir.write("l2", &idx(&[2049, 1 << 29], &[1]));
        let err = read_idx_labels(path).unwrap_err();
        assert!(
            matches!(err, DataError::Truncated { found: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn zero_sized_images_are_rejected() {
        let dir = TempDir::new("zero");
        let path = dir.write("i", &idx(&[2051, 5, 0, 28], &[]));
        let err = read_idx_images(&path).unwrap_err();
        assert!(matches!(err, DataError::BadDimensions { .. }), "{err}");
        assert!(err.to_string().contains("5 images of 0x28 pixels"), "{err}");
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        let dir = TempDir::new("trailing");
        let mut bytes = small_images();
        bytes.extend_from_slice(&[1, 2, 3, 4, 5]);
        let raw = dir.write("raw", &bytes);
        let gz = dir.write("gz", &gzip(&bytes));
        for path in [raw, gz] {
            let err = read_idx_images(&path).unwrap_err();
            assert!(
                matches!(
                    err,
                    DataError::TrailingBytes {
                        extra: 5,
                        expected: 12,
                        ..
                    }
                ),
                "{err}"
            );
        }
        // Non-gzip bytes after the gzip stream itself.
        let mut gz = gzip(&small_labels());
        gz.extend_from_slice(b"garbage!");
        let path = dir.write("labels.gz", &gz);
        let err = read_idx_labels(path).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{err}");
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let dir = TempDir::new("corrupt-gz");
        let mut gz = gzip(&small_images());
        let n = gz.len();
        gz.truncate(n - 6); // cut into the CRC/length trailer
        let path = dir.write("cut.gz", &gz);
        let err = read_idx_images(&path).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{err}");
        assert!(err.to_string().contains("cut.gz"), "{err}");

        let mut gz = gzip(&small_images());
        for byte in &mut gz[10..20] {
            *byte ^= 0xa5;
        }
        let path = dir.write("flipped.gz", &gz);
        assert!(read_idx_images(path).is_err());

        let path = dir.write("just-magic.gz", &[0x1f, 0x8b]);
        assert!(matches!(read_idx_labels(path), Err(DataError::Gzip { .. })));
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let dir = TempDir::new("missing");
        let path = dir.0.join("nope");
        let err = read_idx_images(&path).unwrap_err();
        assert!(matches!(err, DataError::Io { .. }));
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn count_mismatch() {
        let dir = TempDir::new("mismatch");
        let images = dir.write("images", &small_images());
        let labels = dir.write("labels", &idx(&[2049, 2], &[1, 2]));
        let err = load_idx_dataset(&images, &labels).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::CountMismatch {
                    images: 3,
                    labels: 2,
                    ..
                }
            ),
            "{err}"
        );
        let msg = err.to_string();
        assert!(msg.contains("images") && msg.contains("3 images") && msg.contains("2 labels"));
    }

    #[test]
    fn label_range_check() {
        let dir = TempDir::new("labels-range");
        let path = dir.write("labels", &small_labels());
        assert_eq!(read_idx_labels_checked(&path, 10).unwrap(), array![7, 0, 9]);
        let err = read_idx_labels_checked(&path, 8).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::LabelOutOfRange {
                    index: 2,
                    value: 9,
                    num_classes: 8,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn find_idx_file_prefers_raw_then_gz() {
        let dir = TempDir::new("find");
        dir.write("a-images-idx3-ubyte.gz", &gzip(&small_images()));
        dir.write("a-labels-idx1-ubyte", &small_labels());
        assert_eq!(
            find_idx_file(&dir.0, "a-images-idx3-ubyte").unwrap(),
            dir.0.join("a-images-idx3-ubyte.gz")
        );
        assert_eq!(
            find_idx_file(&dir.0, "a-labels-idx1-ubyte").unwrap(),
            dir.0.join("a-labels-idx1-ubyte")
        );
        dir.write("a-labels-idx1-ubyte.gz", &gzip(&small_labels()));
        assert_eq!(
            find_idx_file(&dir.0, "a-labels-idx1-ubyte").unwrap(),
            dir.0.join("a-labels-idx1-ubyte")
        );
        let data = load_idx_split(&dir.0, "a").unwrap();
        assert_eq!(data.images, expected_images());

        let err = find_idx_file(&dir.0, "train-images-idx3-ubyte").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "no file named `train-images-idx3-ubyte` or `train-images-idx3-ubyte.gz` in {}",
                dir.0.display()
            )
        );
        assert!(matches!(
            load_idx_split(&dir.0, "b"),
            Err(DataError::NotFound { .. })
        ));
    }
}
