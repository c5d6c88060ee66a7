//! Dataset readers and deterministic shuffling helpers.
//!
//! * [`read_idx_images`] / [`read_idx_labels`] / [`load_idx_dataset`] read the IDX format of
//!   MNIST and Fashion-MNIST, gzip-compressed or raw.
//! * [`read_digits_csv`] reads scikit-learn's `digits.csv.gz` (the UCI 8x8 digits).
//! * [`Batches`] walks the rows of a dataset in batches, in order or shuffled from a seed;
//!   [`shuffled_indices`] and [`take_rows`] shuffle and gather rows reproducibly.
//! * [`read_words`] reads a word list (makemore's `names.txt`), [`CharVocab`] maps its
//!   characters to tokens, [`encode_rows`] makes the padded `x`/`y` rows of a
//!   character-level language model and [`split_last`] holds out a seeded test set.
//!
//! Every reader validates its input and returns a [`DataError`] naming the file and what is
//! wrong with it; malformed files never cause a panic.
//!
//! Memory is bounded whatever the file claims: an IDX body is read only up to the length its
//! header declares (one byte more shows trailing garbage), a header declaring more than
//! [`MAX_IDX_BYTES`] — or, for gzip, more than [`MAX_GZIP_RATIO`] times the compressed
//! size — is refused before anything is read or allocated ([`DataError::TooLarge`],
//! [`DataError::ImpossibleSize`]); CSV lines are read up to [`MAX_CSV_LINE_BYTES`]
//! ([`DataError::CsvLineTooLong`]) and CSV text up to [`MAX_CSV_BYTES`]
//! ([`DataError::CsvTooLarge`]). A gzip bomb is never decompressed past these limits.
//!
//! ```no_run
//! use tapegrad_nn::data::load_idx_split;
//!
//! let test = load_idx_split("data/fashion-mnist", "t10k")?;
//! let x = test.to_f32_features(); // (10000, 784), values in [0, 1]
//! let y = test.labels_usize();    // 10000 class indices
//! assert_eq!(x.nrows(), y.len());
//! # Ok::<(), tapegrad_nn::data::DataError>(())
//! ```

mod batch;
mod csv;
mod dataset;
mod error;
mod idx;
mod input;
#[cfg(test)]
mod test_files;
mod text;

pub use batch::{Batches, shuffled_indices, take_rows};
pub use csv::{MAX_CSV_BYTES, MAX_CSV_LINE_BYTES, read_digits_csv};
pub use dataset::Dataset;
pub use error::DataError;
pub use idx::{
    IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, find_idx_file, load_idx_dataset, load_idx_split,
    read_idx_images, read_idx_labels, read_idx_labels_checked,
};
pub use input::{MAX_GZIP_RATIO, MAX_IDX_BYTES, MAX_TRAILING_BYTES_COUNTED};
pub use text::{CharVocab, block_size, encode_rows, read_words, split_last};

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array1;
    use std::path::{Path, PathBuf};

    /// The repository's `data/` folder, beside this crate's.
    fn bundled_data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
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
