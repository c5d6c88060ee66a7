//! [`Dataset`]: labelled images in memory, and their conversion to features.

use ndarray::{Array1, Array2, Array3};
use tapegrad_autograd::Float;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_files::expected_images;
    use ndarray::{ShapeBuilder, array};

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
}
