//! Pooling compositions: `global_avg_pool2d` as a mean over the spatial axes.

use crate::{Float, Var};

impl<'t, T: Float> Var<'t, T> {
    /// The mean of each channel over its height and width: images `[N, C, H, W]` give
    /// `[N, C]`. Panics naming the op and the shape if the input is not 4-D.
    ///
    /// ```
    /// use ndarray::{ArrayD, IxDyn};
    /// use tapegrad_autograd::Tape;
    ///
    /// let tape = Tape::new();
    /// let x = tape.var(ArrayD::from_elem(IxDyn(&[2, 3, 4, 5]), 1.5));
    /// let y = x.global_avg_pool2d();
    /// assert_eq!(y.shape(), [2, 3]);
    /// assert!(y.value().iter().all(|&v| v == 1.5));
    /// ```
    #[track_caller]
    pub fn global_avg_pool2d(self) -> Var<'t, T> {
        let shape = self.shape();
        assert!(
            shape.len() == 4,
            "global_avg_pool2d: input {shape:?} is not [N, C, H, W]"
        );
        self.mean_axes([2, 3], false)
    }
}
