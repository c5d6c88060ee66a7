//! The image sets the examples train on, split and scaled as they use them (Keras'
//! `keras.datasets.fashion_mnist.load_data()`): Fashion-MNIST and MNIST, from the 10,000
//! test images bundled in `data/` (the first 8,000 train, the last 2,000 are held out) or
//! from a folder holding the four IDX files of the full set (60,000 / 10,000); and
//! [`bundled_data_dir`], the repository's `data/` folder they and the other examples read.
//!
//! ```
//! use tapegrad::datasets::{ImageSet, load};
//!
//! let split = load(ImageSet::FashionMnist, None)?.limit(Some(100), Some(50));
//! assert_eq!(split.train_x.dim(), (100, 28, 28));
//! assert_eq!(split.test_y.len(), 50);
//! assert_eq!(ImageSet::FashionMnist.class_names()[9], "Ankle boot");
//! # Ok::<(), tapegrad::datasets::LoadError>(())
//! ```

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array3, s};
use tapegrad_nn::data::{DataError, Dataset, load_idx_split};

/// The repository's `data/` folder (Fashion-MNIST, MNIST and digits test files, names),
/// resolved from this crate's source location at compile time.
///
/// Meant for the repository's own examples and tests, run from a checkout; it does not exist
/// for a crate installed from a registry.
///
/// ```
/// use tapegrad::datasets::bundled_data_dir;
/// use tapegrad::nn::data::read_words;
///
/// let words = read_words(bundled_data_dir().join("names/names.txt"))?;
/// assert_eq!(words.len(), 32_033);
/// assert_eq!(words[0], "emma");
/// # Ok::<(), tapegrad::nn::data::DataError>(())
/// ```
pub fn bundled_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// How many of the 10,000 bundled images train; the rest are held out.
pub const BUNDLED_TRAIN: usize = 8_000;

/// Fashion-MNIST's shoe classes: Sandal, Sneaker, Ankle boot.
pub const SHOES: [usize; 3] = [5, 7, 9];

const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];
const FASHION_SHORT: [&str; 10] = [
    "T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot",
];
const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// The 28×28 grey-scale image sets of ten classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageSet {
    /// Fashion-MNIST (Zalando Research): ten kinds of garments and shoes.
    FashionMnist,
    /// MNIST: handwritten digits.
    Mnist,
}

impl ImageSet {
    /// `"Fashion-MNIST"` or `"MNIST"`.
    pub fn name(self) -> &'static str {
        match self {
            ImageSet::FashionMnist => "Fashion-MNIST",
            ImageSet::Mnist => "MNIST",
        }
    }

    /// The classes' names, by label.
    pub fn class_names(self) -> [&'static str; 10] {
        match self {
            ImageSet::FashionMnist => FASHION_CLASSES,
            ImageSet::Mnist => DIGITS,
        }
    }

    /// Names short enough for a table's column headings.
    pub fn short_names(self) -> [&'static str; 10] {
        match self {
            ImageSet::FashionMnist => FASHION_SHORT,
            ImageSet::Mnist => DIGITS,
        }
    }

    /// The folder of `data/` holding the bundled test images.
    fn bundled_folder(self) -> PathBuf {
        bundled_data_dir().join(match self {
            ImageSet::FashionMnist => "fashion-mnist",
            ImageSet::Mnist => "mnist",
        })
    }

    /// Where the files come from, for a message when they are missing.
    fn publisher(self) -> &'static str {
        match self {
            ImageSet::FashionMnist => {
                "Zalando Research at github.com/zalandoresearch/fashion-mnist"
            }
            ImageSet::Mnist => "Yann LeCun's MNIST page and its mirrors",
        }
    }
}

/// Training and held-out images, pixels scaled to `[0, 1]`, with their labels.
#[derive(Clone, Debug)]
pub struct ImageSplit {
    /// Training images, `(n, height, width)`.
    pub train_x: Array3<f32>,
    /// Training labels, `0..10`.
    pub train_y: Vec<usize>,
    /// Held-out images.
    pub test_x: Array3<f32>,
    /// Held-out labels.
    pub test_y: Vec<usize>,
    /// Where the images came from, for reports.
    pub source: String,
}

impl ImageSplit {
    /// Keeps the first `train` training and the first `test` held-out images (at least one
    /// of each; `None` keeps all).
    pub fn limit(mut self, train: Option<usize>, test: Option<usize>) -> Self {
        if let Some(n) = train {
            let n = n.clamp(1, self.train_y.len());
            self.train_x = self.train_x.slice(s![..n, .., ..]).to_owned();
            self.train_y.truncate(n);
            self.source
                .push_str(&format!(", first {n} training images"));
        }
        if let Some(n) = test {
            let n = n.clamp(1, self.test_y.len());
            self.test_x = self.test_x.slice(s![..n, .., ..]).to_owned();
            self.test_y.truncate(n);
            self.source.push_str(&format!(", first {n} held out"));
        }
        self
    }
}

/// Labels as the `f32` targets `fit` and `evaluate` take.
pub fn labels_f32(labels: &[usize]) -> Array1<f32> {
    labels.iter().map(|&c| c as f32).collect()
}

/// Why an image set could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A file is missing, unreadable or malformed.
    #[error(
        "{source}\n  (the {set} files are the four IDX files published by {publisher}; see README.md)"
    )]
    Data {
        /// The reader's error.
        source: DataError,
        /// The image set's name.
        set: &'static str,
        /// Who publishes the files.
        publisher: &'static str,
    },
    /// The bundled folder holds too few images to split.
    #[error("the bundled {set} test set in {} has {found} images; expected more than {BUNDLED_TRAIN}", dir.display())]
    TooFewBundled {
        /// The image set's name.
        set: &'static str,
        /// The folder read.
        dir: PathBuf,
        /// How many images it holds.
        found: usize,
    },
    /// The training and test images differ in size.
    #[error("the training images in {} are {train:?} pixels but the test images are {test:?}", dir.display())]
    ImageShape {
        /// The folder read.
        dir: PathBuf,
        /// Training image size `(height, width)`.
        train: (usize, usize),
        /// Test image size.
        test: (usize, usize),
    },
    /// A label is not one of the ten classes.
    #[error("label {label} of image {index} in the {prefix} labels of {} is not a class 0..9", dir.display())]
    Label {
        /// The folder read.
        dir: PathBuf,
        /// `"train"` or `"t10k"`.
        prefix: &'static str,
        /// The image's position.
        index: usize,
        /// The label found.
        label: u8,
    },
}

/// `set` from the four IDX files in `dir` (gzipped or not; training on `train-*`, held
/// out `t10k-*`), or without `dir` the bundled test images split 8,000 / 2,000.
///
/// # Errors
///
/// [`LoadError`]: a missing or malformed file (with where to get the files), too few
/// bundled images, training and test images of different sizes, a label outside `0..10`.
pub fn load(set: ImageSet, dir: Option<&Path>) -> Result<ImageSplit, LoadError> {
    match dir {
        None => {
            let dir = set.bundled_folder();
            let all = read(set, &dir, "t10k")?;
            if all.len() <= BUNDLED_TRAIN {
                return Err(LoadError::TooFewBundled {
                    set: set.name(),
                    found: all.len(),
                    dir,
                });
            }
            let x = scale(&all.images);
            let labels = all.labels_usize();
            Ok(ImageSplit {
                train_x: x.slice(s![..BUNDLED_TRAIN, .., ..]).to_owned(),
                train_y: labels[..BUNDLED_TRAIN].to_vec(),
                test_x: x.slice(s![BUNDLED_TRAIN.., .., ..]).to_owned(),
                test_y: labels[BUNDLED_TRAIN..].to_vec(),
                source: format!(
                    "the bundled test set, first {BUNDLED_TRAIN} / last {}",
                    all.len() - BUNDLED_TRAIN
                ),
            })
        }
        Some(dir) => {
            let train = read(set, dir, "train")?;
            let test = read(set, dir, "t10k")?;
            if train.image_shape() != test.image_shape() {
                return Err(LoadError::ImageShape {
                    dir: dir.to_path_buf(),
                    train: train.image_shape(),
                    test: test.image_shape(),
                });
            }
            Ok(ImageSplit {
                train_x: scale(&train.images),
                train_y: train.labels_usize(),
                test_x: scale(&test.images),
                test_y: test.labels_usize(),
                source: format!("train and t10k files of {}", dir.display()),
            })
        }
    }
}

/// One split of an IDX folder, its labels checked.
fn read(set: ImageSet, dir: &Path, prefix: &'static str) -> Result<Dataset, LoadError> {
    let dataset = load_idx_split(dir, prefix).map_err(|source| LoadError::Data {
        source,
        set: set.name(),
        publisher: set.publisher(),
    })?;
    match dataset.labels.iter().enumerate().find(|&(_, &l)| l >= 10) {
        Some((index, &label)) => Err(LoadError::Label {
            dir: dir.to_path_buf(),
            prefix,
            index,
            label,
        }),
        None => Ok(dataset),
    }
}

/// Pixels `0..=255` to `[0, 1]`.
fn scale(images: &Array3<u8>) -> Array3<f32> {
    images.mapv(|p| f32::from(p) / 255.0)
}
