//! The geometry of a 2-D convolution (stride, padding, dilation, groups and the sizes they
//! were checked against) and why one is invalid.

use std::fmt;

/// Stride, padding, dilation and groups of a 2-D convolution, with the sizes they were
/// checked against (everything but the batch size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Conv2dGeometry {
    /// Step between windows, `[h, w]`.
    pub(crate) stride: [usize; 2],
    /// Zeros added on each side, `[h, w]`.
    pub(crate) padding: [usize; 2],
    /// Step between the taps of a window, `[h, w]`.
    pub(crate) dilation: [usize; 2],
    /// Channel groups: input and output channels are split in this many groups, output group
    /// `k` seeing only input group `k`.
    pub(crate) groups: usize,
    /// Input channels `C`.
    pub(crate) in_channels: usize,
    /// Output channels `O`.
    pub(crate) out_channels: usize,
    /// Input height and width.
    pub(crate) input_hw: [usize; 2],
    /// Kernel height and width.
    pub(crate) kernel_hw: [usize; 2],
    /// Output height and width.
    pub(crate) output_hw: [usize; 2],
}

/// Why a convolution's shapes or parameters are invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Conv2dError {
    /// The input is not `[N, C, H, W]`.
    InputRank(Vec<usize>),
    /// The weight is not `[O, C/groups, kh, kw]`.
    WeightRank(Vec<usize>),
    /// A stride is zero.
    ZeroStride([usize; 2]),
    /// A dilation is zero.
    ZeroDilation([usize; 2]),
    /// `groups` is zero.
    ZeroGroups,
    /// The kernel has a zero height or width.
    EmptyKernel([usize; 2]),
    /// The input channels are not a multiple of `groups`.
    InChannelsNotDivisible {
        /// `C`.
        channels: usize,
        /// `groups`.
        groups: usize,
    },
    /// The output channels are not a multiple of `groups`.
    OutChannelsNotDivisible {
        /// `O`.
        channels: usize,
        /// `groups`.
        groups: usize,
    },
    /// The weight's second axis is not `C / groups`.
    WeightChannels {
        /// `C / groups`.
        expected: usize,
        /// The weight's second axis.
        got: usize,
    },
    /// The dilated kernel is larger than the padded input along an axis.
    KernelTooLarge {
        /// `"height"` or `"width"`.
        axis: &'static str,
        /// The dilated kernel extent `d·(k − 1) + 1`.
        extent: usize,
        /// The padded input size `H + 2p`.
        padded: usize,
    },
}

impl fmt::Display for Conv2dError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InputRank(shape) => write!(f, "input {shape:?} is not [N, C, H, W]"),
            Self::WeightRank(shape) => write!(f, "weight {shape:?} is not [O, C/groups, kh, kw]"),
            Self::ZeroStride(s) => write!(f, "stride {s:?} has a zero"),
            Self::ZeroDilation(d) => write!(f, "dilation {d:?} has a zero"),
            Self::ZeroGroups => write!(f, "groups is 0"),
            Self::EmptyKernel(k) => write!(f, "kernel size {k:?} has a zero"),
            Self::InChannelsNotDivisible { channels, groups } => {
                write!(
                    f,
                    "{} not divisible by {}",
                    count(*channels, "input channel is", "input channels are"),
                    count(*groups, "group", "groups")
                )
            }
            Self::OutChannelsNotDivisible { channels, groups } => {
                write!(
                    f,
                    "{} not divisible by {}",
                    count(*channels, "output channel is", "output channels are"),
                    count(*groups, "group", "groups")
                )
            }
            Self::WeightChannels { expected, got } => write!(
                f,
                "the weight has {} per group, the input and groups give {expected}",
                count(*got, "input channel", "input channels")
            ),
            Self::KernelTooLarge {
                axis,
                extent,
                padded,
            } => write!(
                f,
                "the kernel's {axis} ({extent} with dilation) exceeds the padded input's ({padded})"
            ),
        }
    }
}

impl Conv2dGeometry {
    /// Checks a convolution of an input of shape `[N, C, H, W]` by a weight of shape
    /// `[O, C/groups, kh, kw]` and returns its geometry and the output shape `[N, O, OH, OW]`,
    /// `OH = (H + 2p − d·(kh − 1) − 1) / s + 1` (PyTorch's).
    pub(crate) fn new(
        x_shape: &[usize],
        w_shape: &[usize],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
    ) -> Result<(Self, [usize; 4]), Conv2dError> {
        let &[n, c, h, w] = x_shape else {
            return Err(Conv2dError::InputRank(x_shape.to_vec()));
        };
        let &[o, cg, kh, kw] = w_shape else {
            return Err(Conv2dError::WeightRank(w_shape.to_vec()));
        };
        if stride.contains(&0) {
            return Err(Conv2dError::ZeroStride(stride));
        }
        if dilation.contains(&0) {
            return Err(Conv2dError::ZeroDilation(dilation));
        }
        if groups == 0 {
            return Err(Conv2dError::ZeroGroups);
        }
        if kh == 0 || kw == 0 {
            return Err(Conv2dError::EmptyKernel([kh, kw]));
        }
        if c % groups != 0 {
            return Err(Conv2dError::InChannelsNotDivisible {
                channels: c,
                groups,
            });
        }
        if o % groups != 0 {
            return Err(Conv2dError::OutChannelsNotDivisible {
                channels: o,
                groups,
            });
        }
        if cg != c / groups {
            return Err(Conv2dError::WeightChannels {
                expected: c / groups,
                got: cg,
            });
        }
        let mut output_hw = [0; 2];
        for (axis, name) in ["height", "width"].into_iter().enumerate() {
            let extent = dilation[axis] * ([kh, kw][axis] - 1) + 1;
            let padded = [h, w][axis] + 2 * padding[axis];
            if extent > padded {
                return Err(Conv2dError::KernelTooLarge {
                    axis: name,
                    extent,
                    padded,
                });
            }
            output_hw[axis] = (padded - extent) / stride[axis] + 1;
        }
        let geometry = Self {
            stride,
            padding,
            dilation,
            groups,
            in_channels: c,
            out_channels: o,
            input_hw: [h, w],
            kernel_hw: [kh, kw],
            output_hw,
        };
        Ok((geometry, geometry.output_shape(n)))
    }

    /// `[n, C, H, W]`.
    pub(crate) fn input_shape(&self, n: usize) -> [usize; 4] {
        [n, self.in_channels, self.input_hw[0], self.input_hw[1]]
    }

    /// `[O, C/groups, kh, kw]`.
    pub(crate) fn weight_shape(&self) -> [usize; 4] {
        let [kh, kw] = self.kernel_hw;
        [self.out_channels, self.in_channels / self.groups, kh, kw]
    }

    /// `[n, O, OH, OW]`.
    pub(crate) fn output_shape(&self, n: usize) -> [usize; 4] {
        [n, self.out_channels, self.output_hw[0], self.output_hw[1]]
    }

    /// Rows of the column matrix: `C/groups · kh · kw`.
    pub(super) fn col_rows(&self) -> usize {
        self.in_channels / self.groups * self.kernel_hw[0] * self.kernel_hw[1]
    }

    /// Columns of one image's column matrix: `OH · OW`.
    pub(super) fn out_plane(&self) -> usize {
        self.output_hw[0] * self.output_hw[1]
    }

    /// `H · W`.
    pub(super) fn in_plane(&self) -> usize {
        self.input_hw[0] * self.input_hw[1]
    }
}

/// `n` and the noun in the number `n` takes (`1 input channel`, `2 input channels`).
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
