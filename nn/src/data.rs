//! Dataset readers, deterministic shuffling helpers and the path of the bundled data.
//!
//! * [`read_idx_images`] / [`read_idx_labels`] / [`load_idx_dataset`] read the IDX format of
//!   MNIST and Fashion-MNIST, gzip-compressed or raw.
//! * [`read_digits_csv`] reads scikit-learn's `digits.csv.gz` (the UCI 8x8 digits).
//! * [`shuffled_indices`] and [`take_rows`] shuffle and gather rows reproducibly.
//! * [`bundled_data_dir`] points at the `data/` folder shipped with the repository.
//!
//! Every reader validates its input and returns a [`DataError`] naming the file and what is
//! wrong with it; malformed files never cause a panic.
//!
//! ```no_run
//! use tapegrad_nn::data::{bundled_data_dir, load_idx_split};
//!
//! let test = load_idx_split(bundled_data_dir().join("fashion-mnist"), "t10k")?;
//! let x = test.to_f32_features(); // (10000, 784), values in [0, 1]
//! let y = test.labels_usize();    // 10000 class indices
//! assert_eq!(x.nrows(), y.len());
//! # Ok::<(), tapegrad_nn::data::DataError>(())
//! ```

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use ndarray::{Array, Array1, Array2, Array3, ArrayBase, Axis, Data, RemoveAxis};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use tapegrad_autograd::Float;

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// Number of pixels of one scikit-learn digits image (8x8).
const DIGITS_PIXELS: usize = 64;
/// Largest pixel value in the digits data (a count of "on" pixels in a 4x4 block).
const DIGITS_MAX_PIXEL: u8 = 16;
/// Largest class label in the digits data.
const DIGITS_MAX_LABEL: u8 = 9;

/// Everything that can go wrong while locating or reading a dataset file.
///
/// Every variant names the file (or folder) involved, so the message alone says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The file starts with the gzip magic bytes but its compressed stream is corrupt or cut
    /// short, or non-gzip bytes follow the last gzip member.
    #[error(
        "cannot decompress gzip file {path} (corrupt, truncated or trailing garbage): {source}"
    )]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: io::Error,
    },

    /// The IDX magic number is not the one expected for this kind of file.
    #[error("wrong magic number {found:#010x} in {path}, expected {expected} ({kind})")]
    WrongMagic {
        /// The file.
        path: PathBuf,
        /// The big-endian `u32` found at the start of the (decompressed) file.
        found: u32,
        /// The expected magic number ([`IDX_IMAGES_MAGIC`] or [`IDX_LABELS_MAGIC`]).
        expected: u32,
        /// What the file should have been, e.g. `"IDX images"`.
        kind: &'static str,
    },

    /// The file ends before its IDX header does.
    #[error("truncated header in {path}: an {kind} header has {expected} bytes, found {found}")]
    TruncatedHeader {
        /// The file.
        path: PathBuf,
        /// What the file should have been, e.g. `"IDX images"`.
        kind: &'static str,
        /// Header length in bytes.
        expected: usize,
        /// Bytes actually present.
        found: usize,
    },

    /// The header's dimensions are unusable (zero-sized images, or a size that overflows).
    #[error("invalid header dimensions in {path}: {reason}")]
    BadDimensions {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// The file holds fewer data bytes than its header promises.
    #[error("truncated: header promises {expected} {what} bytes, found {found} in {path}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// `"pixel"` or `"label"`.
        what: &'static str,
        /// Data bytes the header promises.
        expected: u64,
        /// Data bytes present.
        found: u64,
    },

    /// The file holds more data bytes than its header promises.
    #[error(
        "trailing garbage: {extra} bytes after the {expected} {what} bytes the header promises in {path}"
    )]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// `"pixel"` or `"label"`.
        what: &'static str,
        /// Data bytes the header promises.
        expected: u64,
        /// Bytes found beyond them.
        extra: u64,
    },

    /// A label is not below the expected number of classes.
    #[error(
        "label {value} at index {index} in {path} is out of range: expected fewer than {num_classes} classes"
    )]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// Position of the label in the file (0-based).
        index: usize,
        /// The offending label.
        value: u8,
        /// The number of classes labels must stay below.
        num_classes: usize,
    },

    /// The image and label files disagree on the number of examples.
    #[error(
        "count mismatch: {images_path} holds {images} images but {labels_path} holds {labels} labels"
    )]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// Number of images.
        images: usize,
        /// The label file.
        labels_path: PathBuf,
        /// Number of labels.
        labels: usize,
    },

    /// A line of a CSV file is malformed.
    #[error("{path}, line {line}: {reason}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },

    /// Neither `stem` nor `stem.gz` exists in the folder searched by [`find_idx_file`].
    #[error("no file named `{stem}` or `{stem}.gz` in {dir}")]
    NotFound {
        /// The folder searched.
        dir: PathBuf,
        /// The file name tried (and, with `.gz` appended, the second one).
        stem: String,
    },
}

/// A labelled image dataset: `images[i]` is a `(rows, cols)` image whose class is `labels[i]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// Pixels, shape `(n, rows, cols)`, 0 = background, 255 = full ink.
    pub images: Array3<u8>,
    /// Class labels, shape `(n,)`.
    pub labels: Array1<u8>,
}

impl Dataset {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the dataset holds no example.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `(rows, cols)` of one image.
    pub fn image_shape(&self) -> (usize, usize) {
        let (_, rows, cols) = self.images.dim();
        (rows, cols)
    }

    /// Flattens the images into features of shape `(n, rows * cols)`, scaled to `[0, 1]` as
    /// `pixel / 255` (computed in `f64`, then converted with [`Float::from_f64`]).
    pub fn to_features<T: Float>(&self) -> Array2<T> {
        let (n, rows, cols) = self.images.dim();
        let images = &self.images;
        // `from_shape_fn` works for any memory layout of the public `images` field.
        Array2::from_shape_fn((n, rows * cols), |(i, j)| {
            <T as Float>::from_f64(f64::from(images[[i, j / cols, j % cols]]) / 255.0)
        })
    }

    /// [`to_features`](Self::to_features) for `f32`: shape `(n, rows * cols)`, values in `[0, 1]`.
    pub fn to_f32_features(&self) -> Array2<f32> {
        self.to_features::<f32>()
    }

    /// The labels as class indices.
    pub fn labels_usize(&self) -> Vec<usize> {
        self.labels.iter().map(|&l| usize::from(l)).collect()
    }
}

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

/// Reads scikit-learn's digits CSV (`digits.csv.gz` or plain `digits.csv`): returns the pixels,
/// shape `(n, 64)` (8x8 images, row-major, values `0..=16`), and the labels `0..=9`, shape `(n,)`.
///
/// The file has no header; each line holds 65 comma-separated integers, the last one the
/// label. Blank lines and `\r\n` line ends are accepted. Gzip is recognised by its magic bytes.
///
/// Note the pixel range: divide by 16, not 255, to scale to `[0, 1]`.
///
/// # Errors
///
/// [`DataError::Csv`] naming the file and the 1-based line for a line with the wrong number
/// of fields, a field that is not an integer, or a value out of range; [`DataError::Io`] or
/// [`DataError::Gzip`] if the file cannot be read.
pub fn read_digits_csv(path: impl AsRef<Path>) -> Result<(Array2<u8>, Array1<u8>), DataError> {
    let path = path.as_ref();
    let input = Input::open(path)?;
    let is_gzip = input.is_gzip;
    let mut reader = BufReader::new(input.reader);
    let csv_error = |line: usize, reason: String| DataError::Csv {
        path: path.to_path_buf(),
        line,
        reason,
    };

    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let mut text = String::new();
    let mut line_no = 0;
    loop {
        line_no += 1;
        text.clear();
        match reader.read_line(&mut text) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::InvalidData && !is_gzip => {
                return Err(csv_error(line_no, "not valid UTF-8 text".into()));
            }
            Err(e) => return Err(input_error(path, is_gzip, e)),
        }
        let line = text.trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = 0;
        for (column, field) in line.split(',').enumerate() {
            fields += 1;
            if column > DIGITS_PIXELS {
                continue; // counted, reported below
            }
            let field = field.trim();
            let (max, what) = if column == DIGITS_PIXELS {
                (DIGITS_MAX_LABEL, "label")
            } else {
                (DIGITS_MAX_PIXEL, "pixel")
            };
            let value = field
                .parse::<u8>()
                .ok()
                .filter(|&v| v <= max)
                .ok_or_else(|| {
                    csv_error(
                        line_no,
                        format!(
                            "column {} ({what}): expected an integer in 0..={max}, found {field:?}",
                            column + 1
                        ),
                    )
                })?;
            if column == DIGITS_PIXELS {
                labels.push(value);
            } else {
                pixels.push(value);
            }
        }
        if fields != DIGITS_PIXELS + 1 {
            return Err(csv_error(
                line_no,
                format!(
                    "expected {} comma-separated fields (64 pixels and a label), found {fields}",
                    DIGITS_PIXELS + 1
                ),
            ));
        }
    }
    let n = labels.len();
    let pixels = Array2::from_shape_vec((n, DIGITS_PIXELS), pixels).map_err(|e| {
        csv_error(
            line_no,
            format!("cannot build a {n}x{DIGITS_PIXELS} array: {e}"),
        )
    })?;
    Ok((pixels, Array1::from_vec(labels)))
}

/// A permutation of `0..n`, reproducible from `seed` (`StdRng::seed_from_u64` + Fisher–Yates).
///
/// The same `seed` gives the same order on every platform for a given version of `rand`
/// (`StdRng`'s algorithm may change between `rand` releases).
pub fn shuffled_indices(n: usize, seed: u64) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..n).collect();
    indices.shuffle(&mut StdRng::seed_from_u64(seed));
    indices
}

/// Gathers the rows (entries along axis 0) of `array` listed in `indices`, in that order;
/// indices may repeat. Works for owned arrays and views of any dimensionality ≥ 1.
///
/// ```
/// use ndarray::array;
/// use tapegrad_nn::data::take_rows;
///
/// let x = array![[0, 1], [2, 3], [4, 5]];
/// assert_eq!(take_rows(&x, &[2, 0]), array![[4, 5], [0, 1]]);
/// ```
///
/// # Panics
///
/// If an index is `>= array.len_of(Axis(0))` (a caller bug, like out-of-bounds indexing).
pub fn take_rows<T, S, D>(array: &ArrayBase<S, D>, indices: &[usize]) -> Array<T, D>
where
    T: Clone,
    S: Data<Elem = T>,
    D: RemoveAxis,
{
    array.select(Axis(0), indices)
}

/// The repository's `data/` folder (Fashion-MNIST, MNIST and digits test files), resolved
/// from this crate's source location at compile time: `<nn crate>/../data`.
///
/// Meant for the repository's own examples and tests, run from a checkout; it does not exist
/// for a crate installed from a registry.
pub fn bundled_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("data")
}

/// An opened data file: a reader over its (decompressed) bytes.
struct Input<'p> {
    path: &'p Path,
    is_gzip: bool,
    reader: Box<dyn Read>,
}

impl<'p> Input<'p> {
    /// Opens `path`, sniffing the gzip magic bytes `1f 8b`.
    fn open(path: &'p Path) -> Result<Self, DataError> {
        let io_error = |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = BufReader::new(File::open(path).map_err(io_error)?);
        let mut magic = [0_u8; 2];
        let sniffed = read_up_to(&mut file, &mut magic).map_err(io_error)?;
        let is_gzip = magic[..sniffed] == [0x1f, 0x8b];
        let raw = Cursor::new(magic[..sniffed].to_vec()).chain(file);
        let reader: Box<dyn Read> = if is_gzip {
            // Multi-member aware, as gzip requires; non-gzip bytes after the last member
            // are reported as an error rather than silently ignored.
            Box::new(MultiGzDecoder::new(raw))
        } else {
            Box::new(raw)
        };
        Ok(Input {
            path,
            is_gzip,
            reader,
        })
    }

    fn error(&self, source: io::Error) -> DataError {
        input_error(self.path, self.is_gzip, source)
    }

    /// Reads an IDX header of `N` big-endian `u32`s and checks the magic number.
    fn read_header<const N: usize>(
        &mut self,
        magic: u32,
        kind: &'static str,
    ) -> Result<[u32; N], DataError> {
        let mut bytes = [0_u8; 16];
        let bytes = &mut bytes[..4 * N];
        let found = read_up_to(&mut self.reader, bytes).map_err(|e| self.error(e))?;
        // A wrong magic number is the more helpful message, even for a short file.
        if found >= 4 {
            let got = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            if got != magic {
                return Err(DataError::WrongMagic {
                    path: self.path.to_path_buf(),
                    found: got,
                    expected: magic,
                    kind,
                });
            }
        }
        if found < bytes.len() {
            return Err(DataError::TruncatedHeader {
                path: self.path.to_path_buf(),
                kind,
                expected: bytes.len(),
                found,
            });
        }
        let mut header = [0_u32; N];
        for (value, chunk) in header.iter_mut().zip(bytes.chunks_exact(4)) {
            *value = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        Ok(header)
    }

    /// Reads exactly `len` data bytes and checks that nothing follows them.
    fn read_body(&mut self, len: usize, what: &'static str) -> Result<Vec<u8>, DataError> {
        let expected = len as u64;
        // Never trust the header for the allocation: grow with the bytes actually present.
        let mut data = Vec::with_capacity(len.min(1 << 26));
        (&mut self.reader)
            .take(expected.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|e| self.error(e))?;
        let found = data.len() as u64;
        if found < expected {
            return Err(DataError::Truncated {
                path: self.path.to_path_buf(),
                what,
                expected,
                found,
            });
        }
        if found > expected {
            let rest = io::copy(&mut self.reader, &mut io::sink()).map_err(|e| self.error(e))?;
            return Err(DataError::TrailingBytes {
                path: self.path.to_path_buf(),
                what,
                expected,
                extra: found - expected + rest,
            });
        }
        Ok(data)
    }
}

/// Wraps an I/O error raised while reading `path` (through the gzip decoder if `is_gzip`).
fn input_error(path: &Path, is_gzip: bool, source: io::Error) -> DataError {
    let path = path.to_path_buf();
    if is_gzip {
        DataError::Gzip { path, source }
    } else {
        DataError::Io { path, source }
    }
}

/// Fills `buf` as far as the input allows; returns the number of bytes read (short only at EOF).
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use ndarray::{Array3, ArrayD, IxDyn, ShapeBuilder, array};
    use std::io::Write;

    /// A folder of its own under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("tapegrad-data-test-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
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

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn idx(header: &[u32], body: &[u8]) -> Vec<u8> {
        let mut bytes: Vec<u8> = header.iter().flat_map(|v| v.to_be_bytes()).collect();
        bytes.extend_from_slice(body);
        bytes
    }

    /// 3 images of 2x2 pixels.
    fn small_images() -> Vec<u8> {
        idx(
            &[2051, 3, 2, 2],
            &[0, 1, 2, 3, 10, 11, 12, 13, 255, 254, 253, 252],
        )
    }

    fn small_labels() -> Vec<u8> {
        idx(&[2049, 3], &[7, 0, 9])
    }

    fn expected_images() -> Array3<u8> {
        array![
            [[0, 1], [2, 3]],
            [[10, 11], [12, 13]],
            [[255, 254], [253, 252]]
        ]
    }

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
    fn features_are_scaled_and_flattened() {
        let data = Dataset {
            images: expected_images(),
            labels: array![7, 0, 9],
        };
        let x = data.to_f32_features();
        assert_eq!(x.shape(), &[3, 4]);
        assert_eq!(x[[0, 0]], 0.0);
        assert_eq!(x[[0, 3]], 3.0 / 255.0);
        assert_eq!(x[[1, 2]], 12.0 / 255.0);
        assert_eq!(x[[2, 0]], 1.0);
        let x64 = data.to_features::<f64>();
        assert_eq!(x64[[2, 1]], 254.0 / 255.0);
        // Any memory layout of the public field gives row-major features.
        let mut transposed = data.clone();
        transposed.images = Array3::from_shape_fn((3, 2, 2).f(), |ix| expected_images()[ix]);
        assert_eq!(transposed.to_f32_features(), x);
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
        let path = dir.write("i2", &idx(&[2051, 1 << 30, 1 << 10, 1 << 10], &[1, 2, 3]));
        let err = read_idx_images(path).unwrap_err();
        assert!(
            matches!(err, DataError::Truncated { found: 3, .. }),
            "{err}"
        );
        let path = dir.write("l", &idx(&[2049, u32::MAX], &[1]));
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

    fn digits_line(pixel: u8, label: u8) -> String {
        let mut fields = vec![pixel.to_string(); 64];
        fields.push(label.to_string());
        fields.join(",")
    }

    #[test]
    fn reads_digits_csv_raw_and_gzip() {
        let dir = TempDir::new("csv-good");
        let text = format!(
            "{}\n{}\r\n\n{}",
            digits_line(0, 3),
            digits_line(16, 9),
            digits_line(5, 0)
        );
        let raw = dir.write("d.csv", text.as_bytes());
        let gz = dir.write("d.csv.gz", &gzip(text.as_bytes()));
        for path in [raw, gz] {
            let (x, y) = read_digits_csv(&path).unwrap();
            assert_eq!(x.shape(), &[3, 64]);
            assert_eq!(y, array![3, 9, 0]);
            assert!(x.row(1).iter().all(|&v| v == 16));
            assert!(x.row(2).iter().all(|&v| v == 5));
        }
        let empty = dir.write("empty.csv", b"");
        let (x, y) = read_digits_csv(empty).unwrap();
        assert_eq!((x.shape(), y.len()), (&[0, 64][..], 0));
    }

    #[test]
    fn bad_digits_csv_lines_name_the_line() {
        let dir = TempDir::new("csv-bad");
        let good = digits_line(1, 1);
        let cases = [
            (format!("{good}\n{good},4\n"), 2, "found 66"),
            (format!("{good}\n\n1,2,3\n"), 3, "found 3"),
            (format!("{}\n", good.replacen('1', "x", 1)), 1, "\"x\""),
            (format!("{good}\n{}\n", digits_line(17, 1)), 2, "pixel"),
            (format!("{}\n", digits_line(0, 10)), 1, "column 65 (label)"),
            (format!("{}\n", good.replacen('1', "-1", 1)), 1, "\"-1\""),
            (format!("{}\n", good.replacen('1', "1.5", 1)), 1, "\"1.5\""),
        ];
        for (i, (text, line, needle)) in cases.into_iter().enumerate() {
            for (kind, bytes) in [
                ("raw", text.as_bytes().to_vec()),
                ("gz", gzip(text.as_bytes())),
            ] {
                let path = dir.write(&format!("{i}.{kind}"), &bytes);
                let err = read_digits_csv(&path).unwrap_err();
                match &err {
                    DataError::Csv { line: got, .. } => assert_eq!(*got, line, "{err}"),
                    other => panic!("case {i}: expected a CSV error, got {other}"),
                }
                let msg = err.to_string();
                assert!(msg.contains(&format!("line {line}")), "{msg}");
                assert!(msg.contains(needle), "case {i}: {msg}");
                assert!(msg.contains(&path.display().to_string()), "{msg}");
            }
        }
        let path = dir.write("utf8.csv", b"0,\xff\n");
        let err = read_digits_csv(path).unwrap_err();
        assert!(matches!(err, DataError::Csv { line: 1, .. }), "{err}");
    }

    #[test]
    fn shuffled_indices_is_a_deterministic_permutation() {
        let a = shuffled_indices(1000, 42);
        assert_eq!(a, shuffled_indices(1000, 42));
        assert_ne!(a, shuffled_indices(1000, 43));
        assert_ne!(a, (0..1000).collect::<Vec<_>>());
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert!(shuffled_indices(0, 1).is_empty());
    }

    #[test]
    fn take_rows_gathers_along_axis_0() {
        let x = ArrayD::from_shape_vec(IxDyn(&[3, 2, 2]), (0..12).collect()).unwrap();
        let picked = take_rows(&x, &[2, 0, 2]);
        assert_eq!(picked.shape(), &[3, 2, 2]);
        assert_eq!(picked.index_axis(Axis(0), 0), x.index_axis(Axis(0), 2));
        assert_eq!(picked.index_axis(Axis(0), 1), x.index_axis(Axis(0), 0));
        let labels = array![5_u8, 6, 7];
        assert_eq!(take_rows(&labels.view(), &[1, 1]), array![6, 6]);
        assert_eq!(take_rows(&labels, &[]).len(), 0);
    }

    fn class_counts(labels: &Array1<u8>) -> [usize; 10] {
        let mut counts = [0; 10];
        for &l in labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    fn first(labels: &Array1<u8>, n: usize) -> Vec<u8> {
        labels.iter().take(n).copied().collect()
    }

    #[test]
    fn bundled_fashion_mnist_test_set() {
        let dir = bundled_data_dir().join("fashion-mnist");
        let data = load_idx_split(&dir, "t10k").unwrap();
        assert_eq!(data.images.dim(), (10_000, 28, 28));
        assert_eq!(data.labels.len(), 10_000);
        assert_eq!(class_counts(&data.labels), [1000; 10]);
        assert_eq!(
            first(&data.labels, 20),
            [9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5, 7, 3, 4, 1, 2, 4, 8, 0]
        );
        assert_eq!(data.images.iter().max(), Some(&255));
        let x = data.to_f32_features();
        assert_eq!(x.shape(), &[10_000, 784]);
        assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(
            read_idx_labels_checked(find_idx_file(&dir, "t10k-labels-idx1-ubyte").unwrap(), 10)
                .is_ok()
        );
    }

    #[test]
    fn bundled_mnist_test_set() {
        let data = load_idx_split(bundled_data_dir().join("mnist"), "t10k").unwrap();
        assert_eq!(data.images.dim(), (10_000, 28, 28));
        assert_eq!(
            first(&data.labels, 20),
            [7, 2, 1, 0, 4, 1, 4, 9, 5, 9, 0, 6, 9, 0, 1, 5, 9, 7, 3, 4]
        );
        assert_eq!(
            class_counts(&data.labels),
            [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
        );
    }

    #[test]
    fn bundled_digits() {
        let (x, y) = read_digits_csv(bundled_data_dir().join("digits/digits.csv.gz")).unwrap();
        assert_eq!(x.shape(), &[1797, 64]);
        assert_eq!(y.len(), 1797);
        assert_eq!(first(&y, 10), (0..10).collect::<Vec<u8>>());
        assert_eq!(
            class_counts(&y),
            [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
        );
        assert_eq!(x.iter().max(), Some(&16));
    }
}
