//! Pooling compositions: `max_pool2d` as a gather of each window's maximum (its gradient,
//! overlapping windows included, is the gather's scatter-add) and `global_avg_pool2d` as a
//! mean over the spatial axes.

use std::rc::Rc;

use ndarray::{Ix4, IxDyn};

use crate::kernels::pool2d::max_pool2d_argmax;
use crate::ops::avg_pool2d::pool_geometry;
use crate::ops::gather;
use crate::{Float, Pool2dOptions, Var};

impl<'t, T: Float> Var<'t, T> {
    /// PyTorch's `max_pool2d` of images `[N, C, H, W]`: the maximum of each window, padded
    /// with −∞; the result is `[N, C, OH, OW]`. Recorded as
    /// `x.reshape([N, C, H·W]).gather(2, argmax).reshape([N, C, OH, OW])`, so the gradient
    /// goes to each window's maximum (the first in row-major order on ties) and adds up where
    /// windows overlap. `count_include_pad` is ignored.
    ///
    /// Panics, naming the op, the input shape and the reason, if the input is not 4-D, the
    /// kernel or stride has a zero, the padding exceeds half the kernel, or the output would
    /// be empty.
    ///
    /// ```
    /// use ndarray::{Array, IxDyn};
    /// use tapegrad_autograd::{Pool2dOptions, Tape};
    ///
    /// let tape = Tape::new();
    /// let x = tape.var(Array::range(0.0, 16.0, 1.0).into_shape_with_order(IxDyn(&[1, 1, 4, 4])).unwrap());
    /// let y = x.max_pool2d(&Pool2dOptions::new(2));
    /// assert_eq!(y.to_array().into_raw_vec_and_offset().0, vec![5.0, 7.0, 13.0, 15.0]);
    /// let grads = y.sum().backward();
    /// assert_eq!(grads.get(x).unwrap().sum(), 4.0);
    /// ```
    #[track_caller]
    pub fn max_pool2d(self, options: &Pool2dOptions) -> Var<'t, T> {
        let shape = self.shape();
        let geometry = pool_geometry("max_pool2d", &shape, options);
        let [n, c, h, w] = [shape[0], shape[1], shape[2], shape[3]];
        let [oh, ow] = geometry.output_hw;
        let argmax = {
            let value = self.value();
            let v = value
                .view()
                .into_dimensionality::<Ix4>()
                .expect("checked 4-D");
            max_pool2d_argmax(v, &geometry).1
        };
        let index = argmax
            .into_shape_with_order(IxDyn(&[n, c, oh * ow]))
            .expect("a fresh array in standard layout");
        let flat = self.reshape(&[n, c, h * w]);
        gather::record(flat, 2, Rc::new(index)).reshape(&[n, c, oh, ow])
    }

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
