//! Parameter initializers, with Keras' formulas and a seedable generator.
//!
//! Every initializer draws in `f64` from the generator it is given (`rand`'s [`StdRng`] in
//! layers, seeded by the model) and converts to the element type last, so an `f32` and an
//! `f64` model built from the same seed start from the same values (up to rounding).
//!
//! | initializer | distribution | Keras name |
//! |---|---|---|
//! | [`Zeros`](Initializer::Zeros), [`Ones`](Initializer::Ones), [`Constant`](Initializer::Constant) | fixed values | `zeros`, `ones`, `constant` |
//! | [`Uniform`](Initializer::Uniform) | `U(low, high)` | `random_uniform` |
//! | [`Normal`](Initializer::Normal) | `N(mean, std²)` | `random_normal` |
//! | [`TruncatedNormal`](Initializer::TruncatedNormal) | `N(mean, std²)` redrawn beyond 2 `std` | `truncated_normal` |
//! | [`GlorotUniform`](Initializer::GlorotUniform) | `U(-l, l)`, `l = √(6 / (fan_in + fan_out))` | `glorot_uniform` |
//! | [`GlorotNormal`](Initializer::GlorotNormal) | truncated normal, std `√(2 / (fan_in + fan_out))` | `glorot_normal` |
//! | [`HeUniform`](Initializer::HeUniform) | `U(-l, l)`, `l = √(6 / fan_in)` | `he_uniform` |
//! | [`HeNormal`](Initializer::HeNormal) | truncated normal, std `√(2 / fan_in)` | `he_normal` |
//! | [`LecunUniform`](Initializer::LecunUniform) | `U(-l, l)`, `l = √(3 / fan_in)` | `lecun_uniform` |
//! | [`LecunNormal`](Initializer::LecunNormal) | truncated normal, std `√(1 / fan_in)` | `lecun_normal` |
//!
//! The three scaled normals follow Keras' `VarianceScaling(distribution="truncated_normal")`
//! exactly: a normal truncated at two standard deviations (values beyond are redrawn) whose
//! standard deviation before truncation is the target divided by `0.87962566103423978`, so
//! that the values drawn have the target standard deviation. (PyTorch's `xavier_normal_`
//! and `kaiming_normal_` use an untruncated normal with the same standard deviation.)
//!
//! ```
//! use rand::{rngs::StdRng, SeedableRng};
//! use tapegrad_nn::init::{fans, Initializer};
//!
//! let mut rng = StdRng::seed_from_u64(7);
//! let kernel = Initializer::GlorotUniform.init::<f32, _>(&[784, 128], &mut rng);
//! let limit = (6.0_f32 / (784.0 + 128.0)).sqrt();
//! assert!(kernel.iter().all(|&w| w.abs() <= limit));
//! assert_eq!(fans(&[784, 128]), (784, 128));
//! ```

use ndarray::ArrayD;
use rand::Rng;
#[cfg(doc)]
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal, StandardNormal};
use tapegrad_autograd::Float;

/// The standard deviation of a standard normal truncated to `[-2, 2]` (Keras' correction).
const TRUNCATED_STD: f64 = 0.879_625_661_034_239_8;

/// How a parameter's initial values are drawn. See the [module docs](self) for the formulas.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
#[non_exhaustive]
pub enum Initializer {
    /// All zeros (Keras' default bias).
    Zeros,
    /// All ones (layer-norm gain).
    Ones,
    /// Every element equal to the value.
    Constant(f64),
    /// Uniform in `[low, high)`.
    Uniform {
        /// Lower bound (inclusive).
        low: f64,
        /// Upper bound (exclusive).
        high: f64,
    },
    /// Normal with this mean and standard deviation.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// Normal with this mean and standard deviation (before truncation), with values more
    /// than two standard deviations from the mean redrawn (Keras' `TruncatedNormal`).
    TruncatedNormal {
        /// Mean.
        mean: f64,
        /// Standard deviation of the normal before truncation.
        std: f64,
    },
    /// Uniform in `±√(6 / (fan_in + fan_out))` (Keras' default kernel).
    #[default]
    GlorotUniform,
    /// Truncated normal with standard deviation `√(2 / (fan_in + fan_out))` (Keras).
    GlorotNormal,
    /// Uniform in `±√(6 / fan_in)`.
    HeUniform,
    /// Truncated normal with standard deviation `√(2 / fan_in)` (Keras).
    HeNormal,
    /// Uniform in `±√(3 / fan_in)`.
    LecunUniform,
    /// Truncated normal with standard deviation `√(1 / fan_in)` (Keras).
    LecunNormal,
}

/// `(fan_in, fan_out)` of a parameter shape, as Keras computes them: a scalar counts as
/// `(1, 1)`, a vector of length `n` as `(n, n)`, a `(in, out)` matrix as `(in, out)`, and
/// a convolution kernel `(..., in, out)` multiplies both by its receptive field (the
/// product of the leading axes).
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [fan_in, fan_out] => (*fan_in, *fan_out),
        [receptive @ .., fan_in, fan_out] => {
            let field: usize = receptive.iter().product();
            (fan_in * field, fan_out * field)
        }
    }
}

impl Initializer {
    /// Draws an array of `shape` from `rng`.
    ///
    /// Panics on invalid settings: `low > high`, a negative or non-finite standard
    /// deviation, or a fan of zero for the scaled initializers.
    #[track_caller]
    pub fn init<T: Float, R: Rng + ?Sized>(&self, shape: &[usize], rng: &mut R) -> ArrayD<T> {
        let (fan_in, fan_out) = fans(shape);
        let scaled = |fan: usize, what: &str| -> f64 {
            assert!(
                fan > 0,
                "{self:?}: the parameter shape {shape:?} has {what} 0, so the scale is undefined"
            );
            fan as f64
        };
        match *self {
            Initializer::Zeros => ArrayD::zeros(shape),
            Initializer::Ones => ArrayD::ones(shape),
            Initializer::Constant(value) => ArrayD::from_elem(shape, T::from_f64(value)),
            Initializer::Uniform { low, high } => uniform(shape, low, high, rng),
            Initializer::Normal { mean, std } => {
                let normal = Normal::new(mean, std).unwrap_or_else(|e| {
                    panic!("Initializer::Normal: invalid standard deviation {std}: {e}")
                });
                ArrayD::from_shape_simple_fn(shape, || T::from_f64(normal.sample(rng)))
            }
            Initializer::TruncatedNormal { mean, std } => truncated_normal(shape, mean, std, rng),
            Initializer::GlorotUniform => {
                let limit = (6.0 / scaled(fan_in + fan_out, "fan_in + fan_out")).sqrt();
                uniform(shape, -limit, limit, rng)
            }
            Initializer::GlorotNormal => {
                let std = (2.0 / scaled(fan_in + fan_out, "fan_in + fan_out")).sqrt();
                truncated_normal(shape, 0.0, std / TRUNCATED_STD, rng)
            }
            Initializer::HeUniform => {
                let limit = (6.0 / scaled(fan_in, "fan_in")).sqrt();
                uniform(shape, -limit, limit, rng)
            }
            Initializer::HeNormal => {
                let std = (2.0 / scaled(fan_in, "fan_in")).sqrt();
                truncated_normal(shape, 0.0, std / TRUNCATED_STD, rng)
            }
            Initializer::LecunUniform => {
                let limit = (3.0 / scaled(fan_in, "fan_in")).sqrt();
                uniform(shape, -limit, limit, rng)
            }
            Initializer::LecunNormal => {
                let std = (1.0 / scaled(fan_in, "fan_in")).sqrt();
                truncated_normal(shape, 0.0, std / TRUNCATED_STD, rng)
            }
        }
    }
}

#[track_caller]
fn uniform<T: Float, R: Rng + ?Sized>(
    shape: &[usize],
    low: f64,
    high: f64,
    rng: &mut R,
) -> ArrayD<T> {
    assert!(
        low <= high && low.is_finite() && high.is_finite(),
        "Initializer::Uniform: invalid bounds [{low}, {high})"
    );
    let width = high - low;
    ArrayD::from_shape_simple_fn(shape, || T::from_f64(low + width * rng.random::<f64>()))
}

#[track_caller]
fn truncated_normal<T: Float, R: Rng + ?Sized>(
    shape: &[usize],
    mean: f64,
    std: f64,
    rng: &mut R,
) -> ArrayD<T> {
    assert!(
        std >= 0.0 && std.is_finite(),
        "truncated normal initializer: invalid standard deviation {std}"
    );
    ArrayD::from_shape_simple_fn(shape, || {
        // Rejection: 95.4% of draws land within two standard deviations.
        let z = loop {
            let z: f64 = StandardNormal.sample(rng);
            if z.abs() <= 2.0 {
                break z;
            }
        };
        T::from_f64(mean + std * z)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn moments(a: &ArrayD<f64>) -> (f64, f64, f64) {
        let n = a.len() as f64;
        let mean = a.sum() / n;
        let var = a.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let max_abs = a.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        (mean, var.sqrt(), max_abs)
    }

    #[test]
    fn fans_follow_keras() {
        assert_eq!(fans(&[]), (1, 1));
        assert_eq!(fans(&[5]), (5, 5));
        assert_eq!(fans(&[784, 128]), (784, 128));
        assert_eq!(fans(&[3, 3, 16, 32]), (144, 288));
    }

    #[test]
    fn fixed_initializers() {
        let mut rng = StdRng::seed_from_u64(0);
        assert!(
            Initializer::Zeros
                .init::<f32, _>(&[2, 3], &mut rng)
                .iter()
                .all(|&v| v == 0.0)
        );
        assert!(
            Initializer::Ones
                .init::<f64, _>(&[4], &mut rng)
                .iter()
                .all(|&v| v == 1.0)
        );
        let c = Initializer::Constant(0.25).init::<f64, _>(&[2, 2], &mut rng);
        assert_eq!(c.shape(), &[2, 2]);
        assert!(c.iter().all(|&v| v == 0.25));
    }

    #[test]
    fn uniform_families_have_keras_limits_and_spread() {
        let shape = [400, 200];
        let cases = [
            (Initializer::GlorotUniform, (6.0_f64 / 600.0).sqrt()),
            (Initializer::HeUniform, (6.0_f64 / 400.0).sqrt()),
            (Initializer::LecunUniform, (3.0_f64 / 400.0).sqrt()),
            (
                Initializer::Uniform {
                    low: -0.05,
                    high: 0.05,
                },
                0.05,
            ),
        ];
        for (init, limit) in cases {
            let mut rng = StdRng::seed_from_u64(1);
            let a = init.init::<f64, _>(&shape, &mut rng);
            let (mean, std, max_abs) = moments(&a);
            assert!(max_abs <= limit, "{init:?}: {max_abs} > {limit}");
            assert!(max_abs > 0.99 * limit, "{init:?}: does not reach its limit");
            assert!(mean.abs() < 0.01 * limit, "{init:?}: mean {mean}");
            // U(-l, l) has standard deviation l/√3.
            let want = limit / 3.0_f64.sqrt();
            assert!(
                (std - want).abs() < 0.01 * want,
                "{init:?}: std {std}, want {want}"
            );
        }
    }

    #[test]
    fn normal_families_have_the_target_std() {
        let shape = [300, 500];
        let cases = [
            (Initializer::GlorotNormal, (2.0_f64 / 800.0).sqrt(), true),
            (Initializer::HeNormal, (2.0_f64 / 300.0).sqrt(), true),
            (Initializer::LecunNormal, (1.0_f64 / 300.0).sqrt(), true),
            (
                Initializer::Normal {
                    mean: 0.0,
                    std: 0.05,
                },
                0.05,
                false,
            ),
            (
                Initializer::TruncatedNormal {
                    mean: 0.0,
                    std: 0.05,
                },
                0.05 * TRUNCATED_STD,
                true,
            ),
        ];
        for (init, want, truncated) in cases {
            let mut rng = StdRng::seed_from_u64(2);
            let a = init.init::<f64, _>(&shape, &mut rng);
            let (mean, std, max_abs) = moments(&a);
            assert!(
                (std - want).abs() < 0.01 * want,
                "{init:?}: std {std}, want {want}"
            );
            assert!(mean.abs() < 0.01 * want, "{init:?}: mean {mean}");
            if truncated {
                // Two standard deviations of the normal before truncation.
                let bound = 2.0 * want / TRUNCATED_STD;
                assert!(
                    max_abs <= bound * (1.0 + 1e-12),
                    "{init:?}: {max_abs} > {bound}"
                );
            } else {
                assert!(max_abs > 3.0 * want, "{init:?}: looks truncated");
            }
        }
    }

    #[test]
    fn same_seed_same_values_across_element_types() {
        let a = Initializer::HeNormal.init::<f64, _>(&[8, 4], &mut StdRng::seed_from_u64(9));
        let b = Initializer::HeNormal.init::<f64, _>(&[8, 4], &mut StdRng::seed_from_u64(9));
        let c = Initializer::HeNormal.init::<f32, _>(&[8, 4], &mut StdRng::seed_from_u64(9));
        assert_eq!(a, b);
        assert!(a.iter().zip(c.iter()).all(|(x, y)| *x as f32 == *y));
        let d = Initializer::HeNormal.init::<f64, _>(&[8, 4], &mut StdRng::seed_from_u64(10));
        assert_ne!(a, d);
    }

    #[test]
    #[should_panic(expected = "fan_in 0")]
    fn zero_fan_is_rejected() {
        Initializer::HeNormal.init::<f32, _>(&[0, 3], &mut StdRng::seed_from_u64(0));
    }
}
