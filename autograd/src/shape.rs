//! [`Shape`]: a variable's shape as [`Var::shape`](crate::Var::shape) returns it, held
//! inline up to six axes, so that a layer reading its input's shape on every forward pass
//! does not allocate.

use std::fmt;
use std::ops::{Deref, DerefMut};

use smallvec::SmallVec;

/// The length of each axis of a variable (`[batch, features]`): a list of `usize` on the
/// stack up to six axes. It reads like a slice (`shape[0]`, `shape.len()`,
/// `shape.iter()`, `&shape[1..]`, `&shape` where a `&[usize]` is expected), iterates by
/// value or by reference, compares with slices, arrays and vectors on either side, prints
/// like a slice, converts to a `Vec<usize>` with `to_vec()` or `into()`, and builds arrays
/// (`ArrayD::zeros(shape)`).
///
/// ```
/// use ndarray::{ArrayD, IxDyn};
/// use tapegrad_autograd::Tape;
///
/// fn features(shape: &[usize]) -> usize {
///     shape[1..].iter().product()
/// }
///
/// let tape = Tape::<f32>::new();
/// let x = tape.var(ArrayD::zeros(IxDyn(&[2, 3, 4])));
/// let value = ArrayD::<f32>::zeros(IxDyn(&[2, 3, 4]));
///
/// // Indexing, length, a slice where one is expected.
/// assert_eq!(x.shape()[0], 2);
/// assert_eq!(x.shape().len(), 3);
/// assert_eq!(features(&x.shape()), 12);
///
/// // Comparisons with arrays, slices and vectors, either side.
/// assert!(x.shape() == [2, 3, 4]);
/// assert_eq!(x.shape(), &[2, 3, 4]);
/// assert_eq!(x.shape(), vec![2, 3, 4]);
/// assert_eq!(x.shape(), value.shape());
/// assert_eq!(value.shape(), x.shape());
/// assert_eq!([2, 3, 4], x.shape());
/// assert_eq!(vec![2, 3, 4], x.shape());
///
/// // Iteration, by value and by reference.
/// let mut total = 1;
/// for d in x.shape() {
///     total *= d;
/// }
/// assert_eq!(total, 24);
/// assert_eq!(x.shape().iter().sum::<usize>(), 9);
///
/// // Printing, copying out, building.
/// assert_eq!(format!("{:?}", x.shape()), "[2, 3, 4]");
/// let dims: Vec<usize> = x.shape().to_vec();
/// assert_eq!(dims, [2, 3, 4]);
/// let mut flat = x.shape();
/// flat.truncate(1);
/// flat.push(12);
/// assert_eq!(x.reshape(&flat).shape(), [2, 12]);
/// assert_eq!(ArrayD::<f32>::zeros(x.shape()).shape(), [2, 3, 4]);
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shape(SmallVec<[usize; 6]>);

impl Shape {
    /// The shape with axes `dims`.
    pub fn new(dims: &[usize]) -> Self {
        Shape(SmallVec::from_slice(dims))
    }

    /// The axes as a slice.
    pub fn as_slice(&self) -> &[usize] {
        &self.0
    }

    /// Appends an axis of length `len`.
    pub fn push(&mut self, len: usize) {
        self.0.push(len);
    }

    /// Removes the last axis and returns its length.
    pub fn pop(&mut self) -> Option<usize> {
        self.0.pop()
    }

    /// Inserts an axis of length `len` at position `axis`.
    pub fn insert(&mut self, axis: usize, len: usize) {
        self.0.insert(axis, len);
    }

    /// Removes the axis at position `axis` and returns its length.
    pub fn remove(&mut self, axis: usize) -> usize {
        self.0.remove(axis)
    }

    /// Keeps the first `ndim` axes.
    pub fn truncate(&mut self, ndim: usize) {
        self.0.truncate(ndim);
    }
}

impl Deref for Shape {
    type Target = [usize];
    fn deref(&self) -> &[usize] {
        &self.0
    }
}

impl DerefMut for Shape {
    fn deref_mut(&mut self) -> &mut [usize] {
        &mut self.0
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0[..], f)
    }
}

/// A shape builds arrays: `ArrayD::zeros(x.shape())`.
impl ndarray::IntoDimension for Shape {
    type Dim = ndarray::IxDyn;
    fn into_dimension(self) -> ndarray::IxDyn {
        ndarray::IxDyn(&self.0)
    }
}

impl ndarray::IntoDimension for &Shape {
    type Dim = ndarray::IxDyn;
    fn into_dimension(self) -> ndarray::IxDyn {
        ndarray::IxDyn(&self.0)
    }
}

impl From<&[usize]> for Shape {
    fn from(dims: &[usize]) -> Self {
        Shape::new(dims)
    }
}

impl From<Shape> for Vec<usize> {
    fn from(shape: Shape) -> Self {
        shape.0.into_vec()
    }
}

impl FromIterator<usize> for Shape {
    fn from_iter<I: IntoIterator<Item = usize>>(dims: I) -> Self {
        Shape(dims.into_iter().collect())
    }
}

impl IntoIterator for Shape {
    type Item = usize;
    type IntoIter = smallvec::IntoIter<[usize; 6]>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl AsRef<[usize]> for Shape {
    fn as_ref(&self) -> &[usize] {
        &self.0
    }
}

impl std::borrow::Borrow<[usize]> for Shape {
    fn borrow(&self) -> &[usize] {
        &self.0
    }
}

impl<'a> IntoIterator for &'a Shape {
    type Item = &'a usize;
    type IntoIter = std::slice::Iter<'a, usize>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Extend<usize> for Shape {
    fn extend<I: IntoIterator<Item = usize>>(&mut self, dims: I) {
        self.0.extend(dims);
    }
}

impl PartialEq<[usize]> for Shape {
    fn eq(&self, other: &[usize]) -> bool {
        self.0[..] == *other
    }
}

impl PartialEq<&[usize]> for Shape {
    fn eq(&self, other: &&[usize]) -> bool {
        self.0[..] == **other
    }
}

impl<const N: usize> PartialEq<[usize; N]> for Shape {
    fn eq(&self, other: &[usize; N]) -> bool {
        self.0[..] == other[..]
    }
}

impl<const N: usize> PartialEq<&[usize; N]> for Shape {
    fn eq(&self, other: &&[usize; N]) -> bool {
        self.0[..] == other[..]
    }
}

impl PartialEq<Vec<usize>> for Shape {
    fn eq(&self, other: &Vec<usize>) -> bool {
        self.0[..] == other[..]
    }
}

impl PartialEq<Shape> for Vec<usize> {
    fn eq(&self, other: &Shape) -> bool {
        self[..] == other.0[..]
    }
}

impl PartialEq<Shape> for [usize] {
    fn eq(&self, other: &Shape) -> bool {
        *self == other.0[..]
    }
}

impl PartialEq<Shape> for &[usize] {
    fn eq(&self, other: &Shape) -> bool {
        **self == other.0[..]
    }
}

impl<const N: usize> PartialEq<Shape> for [usize; N] {
    fn eq(&self, other: &Shape) -> bool {
        self[..] == other.0[..]
    }
}

impl<const N: usize> PartialEq<Shape> for &[usize; N] {
    fn eq(&self, other: &Shape) -> bool {
        self[..] == other.0[..]
    }
}
