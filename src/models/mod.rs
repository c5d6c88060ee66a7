//! The networks the examples and the benchmarks train, defined once: the Fashion-MNIST
//! classifiers here, makemore's character-level language models in [`makemore`].
//!
//! ```
//! use tapegrad::models::{small_cnn, tutorial_mlp};
//!
//! let mlp = tutorial_mlp();
//! let cnn = small_cnn(28, 28);
//! # let _ = (mlp, cnn);
//! ```

use tapegrad_nn::layers::{
    Activation, Conv2d, Dense, Flatten, MaxPool2d, Padding, Reshape, Sequential,
};

/// TensorFlow's beginner classifier: Flatten → Dense(128, relu) → Dense(10) (logits).
pub fn tutorial_mlp() -> Sequential<f32> {
    Sequential::new()
        .add(Flatten::new())
        .add(Dense::new(128).activation(Activation::Relu))
        .add(Dense::new(10))
}

/// A small CNN for `height × width` grey-scale images: reshape to `(1, height, width)` →
/// conv(32, 3×3, same, relu) → maxpool 2 → conv(64, 3×3, same, relu) → maxpool 2 →
/// flatten → dense(128, relu) → dense(10) (logits).
pub fn small_cnn(height: usize, width: usize) -> Sequential<f32> {
    let conv = |filters| {
        Conv2d::new(filters, 3)
            .padding(Padding::Same)
            .activation(Activation::Relu)
    };
    Sequential::new()
        .add(Reshape::new(&[1, height as isize, width as isize]))
        .add(conv(32))
        .add(MaxPool2d::new(2))
        .add(conv(64))
        .add(MaxPool2d::new(2))
        .add(Flatten::new())
        .add(Dense::new(128).activation(Activation::Relu))
        .add(Dense::new(10))
}

pub mod makemore;
