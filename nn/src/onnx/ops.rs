//! The building blocks layer rules share, as methods of [`OnnxGraph`]: products, reshapes,
//! transposes and the [`Activation`] functions.

use tapegrad_autograd::Float;

use super::OnnxGraph;
use super::attr;
use crate::layers::Activation;

impl<T: Float> OnnxGraph<T> {
    /// `x · kernel + bias` over the last axis of `x` (`kernel` is `[in, out]`, as a
    /// [`Dense`](crate::layers::Dense) kernel): `MatMul`, then `Add`.
    pub fn linear(&mut self, x: &str, kernel: &str, bias: Option<&str>) -> String {
        let product = self.node("MatMul", &[x, kernel], vec![]);
        match bias {
            Some(bias) => self.node("Add", &[&product, bias], vec![]),
            None => product,
        }
    }

    /// `x · weightᵀ + bias` for a weight in PyTorch's `[out, in]` layout
    /// ([`Linear`](crate::layers::Linear)): the initializer keeps its layout and a
    /// `Transpose` node (folded by runtimes) feeds the product.
    pub fn linear_transposed(&mut self, x: &str, weight: &str, bias: Option<&str>) -> String {
        let kernel = self.transpose(weight, &[1, 0]);
        self.linear(x, &kernel, bias)
    }

    /// `Transpose` with the permutation `perm`.
    pub fn transpose(&mut self, x: &str, perm: &[i64]) -> String {
        self.node("Transpose", &[x], vec![attr::ints("perm", perm)])
    }

    /// `Reshape` to `shape` (`0` keeps the input's size on that axis, `-1` is inferred:
    /// `[0, -1]` flattens each sample of a batch of any size).
    pub fn reshape(&mut self, x: &str, shape: &[i64]) -> String {
        let shape = self.ints(shape);
        self.node("Reshape", &[x, &shape], vec![])
    }

    /// `x * value` for a scalar `value`.
    pub fn mul_scalar(&mut self, x: &str, value: f64) -> String {
        let value = self.scalar(value);
        self.node("Mul", &[x, &value], vec![])
    }

    /// `x + value` for a scalar `value`.
    pub fn add_scalar(&mut self, x: &str, value: f64) -> String {
        let value = self.scalar(value);
        self.node("Add", &[x, &value], vec![])
    }

    /// `activation(x)`, computed as tapegrad computes it: one operator each, but the exact
    /// GELU `x · (erf(x / √2) + 1) / 2` (an operator of opset 20 only) and softplus
    /// `max(x, 0) + ln(1 + e^-|x|)`, written with `Erf` and the stable form (ONNX's
    /// `Softplus` is `ln(1 + eˣ)`, which overflows in `f32` past `x ≈ 88`). The identity
    /// adds no node.
    pub fn activation(&mut self, x: &str, activation: Activation) -> String {
        match activation {
            Activation::Linear => x.to_string(),
            Activation::Relu => self.node("Relu", &[x], vec![]),
            Activation::Sigmoid => self.node("Sigmoid", &[x], vec![]),
            Activation::Tanh => self.node("Tanh", &[x], vec![]),
            Activation::Softmax => self.node("Softmax", &[x], vec![attr::int("axis", -1)]),
            Activation::LeakyRelu(alpha) => {
                self.node("LeakyRelu", &[x], vec![attr::float("alpha", alpha)])
            }
            Activation::Elu(alpha) => self.node("Elu", &[x], vec![attr::float("alpha", alpha)]),
            Activation::Gelu => {
                let scaled = self.mul_scalar(x, std::f64::consts::FRAC_1_SQRT_2);
                let erf = self.node("Erf", &[&scaled], vec![]);
                let shifted = self.add_scalar(&erf, 1.0);
                let cdf = self.mul_scalar(&shifted, 0.5);
                self.node("Mul", &[x, &cdf], vec![])
            }
            Activation::Softplus => {
                let positive = self.node("Relu", &[x], vec![]);
                let magnitude = self.node("Abs", &[x], vec![]);
                let negated = self.node("Neg", &[&magnitude], vec![]);
                let exp = self.node("Exp", &[&negated], vec![]);
                let shifted = self.add_scalar(&exp, 1.0);
                let log = self.node("Log", &[&shifted], vec![]);
                self.node("Add", &[&positive, &log], vec![])
            }
        }
    }

    /// Layer normalization over the last axis with a gain and an offset
    /// (`LayerNormalization`, opset 17).
    pub fn layer_norm(&mut self, x: &str, gamma: &str, beta: &str, eps: f64) -> String {
        let attributes = vec![attr::int("axis", -1), attr::float("epsilon", eps)];
        self.node("LayerNormalization", &[x, gamma, beta], attributes)
    }
}
