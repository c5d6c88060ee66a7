//! The options of the windowed ops (2-D convolution and pooling): [`Conv2dOptions`],
//! [`Pool2dOptions`] and the [`Pair`] their builder setters take (one number for both axes,
//! or `[h, w]`).

/// A size per spatial axis, `[h, w]`: built from one number (both axes) or a pair, so a
/// setter reads `.stride(2)` or `.padding([1, 2])`.
///
/// ```
/// use tapegrad_autograd::Pair;
///
/// assert_eq!(Pair::from(3), Pair([3, 3]));
/// assert_eq!(Pair::from([1, 2]), Pair([1, 2]));
/// assert_eq!(Pair::from((1, 2)), Pair([1, 2]));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pair(pub [usize; 2]);

impl From<usize> for Pair {
    fn from(n: usize) -> Self {
        Pair([n, n])
    }
}

impl From<[usize; 2]> for Pair {
    fn from(hw: [usize; 2]) -> Self {
        Pair(hw)
    }
}

impl From<(usize, usize)> for Pair {
    fn from((h, w): (usize, usize)) -> Self {
        Pair([h, w])
    }
}

/// Stride, padding, dilation and groups of [`Var::conv2d`](crate::Var::conv2d), with
/// PyTorch's defaults (`Default`: stride 1, padding 0, dilation 1, groups 1).
///
/// ```
/// use tapegrad_autograd::Conv2dOptions;
///
/// let options = Conv2dOptions::default().stride(2).padding([1, 0]).groups(2);
/// assert_eq!(options.stride, [2, 2]);
/// assert_eq!(options.padding, [1, 0]);
/// assert_eq!(options.dilation, [1, 1]);
/// assert_eq!(options.groups, 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// Step between windows, `[h, w]`.
    pub stride: [usize; 2],
    /// Zeros added on each side of the input, `[h, w]`.
    pub padding: [usize; 2],
    /// Step between the taps of a window, `[h, w]`.
    pub dilation: [usize; 2],
    /// Channel groups: input and output channels split in this many groups, output group
    /// `k` seeing input group `k` only (`groups` = channels is a depthwise convolution).
    pub groups: usize,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

impl Conv2dOptions {
    /// Sets the stride (one number for both axes, or `[h, w]`).
    #[must_use]
    pub fn stride(mut self, stride: impl Into<Pair>) -> Self {
        self.stride = stride.into().0;
        self
    }

    /// Sets the zero padding on each side (one number for both axes, or `[h, w]`).
    #[must_use]
    pub fn padding(mut self, padding: impl Into<Pair>) -> Self {
        self.padding = padding.into().0;
        self
    }

    /// Sets the dilation (one number for both axes, or `[h, w]`).
    #[must_use]
    pub fn dilation(mut self, dilation: impl Into<Pair>) -> Self {
        self.dilation = dilation.into().0;
        self
    }

    /// Sets the number of channel groups.
    #[must_use]
    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }
}

/// Window, stride, padding and rounding of [`Var::max_pool2d`](crate::Var::max_pool2d) and
/// [`Var::avg_pool2d`](crate::Var::avg_pool2d), with PyTorch's defaults: stride = kernel,
/// padding 0, floor rounding, and (average pooling) `count_include_pad` true.
///
/// ```
/// use tapegrad_autograd::Pool2dOptions;
///
/// let options = Pool2dOptions::new(3).stride(2).padding(1);
/// assert_eq!(options.kernel, [3, 3]);
/// assert_eq!(options.stride, Some([2, 2]));
/// assert!(options.count_include_pad && !options.ceil_mode);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dOptions {
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Step between windows, `[h, w]`; `None` is the kernel size.
    pub stride: Option<[usize; 2]>,
    /// Padding on each side, `[h, w]`, at most half the kernel (−∞ for max pooling, zeros
    /// for average pooling).
    pub padding: [usize; 2],
    /// Whether the output size rounds up (a last, partial window); floor otherwise.
    pub ceil_mode: bool,
    /// Average pooling only: whether a window's divisor counts its padding (PyTorch's
    /// default) or only the input elements it covers.
    pub count_include_pad: bool,
}

impl Pool2dOptions {
    /// A `kernel` window (one number for both axes, or `[h, w]`) with the defaults.
    pub fn new(kernel: impl Into<Pair>) -> Self {
        Pool2dOptions {
            kernel: kernel.into().0,
            stride: None,
            padding: [0, 0],
            ceil_mode: false,
            count_include_pad: true,
        }
    }

    /// Sets the stride (one number for both axes, or `[h, w]`).
    #[must_use]
    pub fn stride(mut self, stride: impl Into<Pair>) -> Self {
        self.stride = Some(stride.into().0);
        self
    }

    /// Sets the padding on each side (one number for both axes, or `[h, w]`).
    #[must_use]
    pub fn padding(mut self, padding: impl Into<Pair>) -> Self {
        self.padding = padding.into().0;
        self
    }

    /// Sets ceil mode (round the output size up).
    #[must_use]
    pub fn ceil_mode(mut self, ceil_mode: bool) -> Self {
        self.ceil_mode = ceil_mode;
        self
    }

    /// Sets whether average pooling divides by the padded window size.
    #[must_use]
    pub fn count_include_pad(mut self, count_include_pad: bool) -> Self {
        self.count_include_pad = count_include_pad;
        self
    }
}
