//! The owners that give their blocks back to the pool when dropped: [`PooledVec`] (a
//! vector), [`Pooled`] (an array), [`ArrayBox`] (a node's boxed array) and [`Shared`] (an
//! op's counted attributes).

use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use ndarray::ArrayD;

use super::{copy, recycle, recycle_array, vec, zeros};
use crate::Float;

/// A vector whose block goes back to the pool when it is dropped (workspaces, the tape's
/// and the backward sweep's bookkeeping), and that grows through the pool.
pub(crate) struct PooledVec<X>(Vec<X>);

impl<X> PooledVec<X> {
    /// An empty vector (it takes a block when the first element is pushed).
    pub(crate) const fn new() -> Self {
        PooledVec(Vec::new())
    }

    /// An empty vector with room for `capacity` elements.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        PooledVec(vec(capacity))
    }

    /// Appends `x`; a full vector moves to a block of twice its capacity first.
    #[inline]
    pub(crate) fn push(&mut self, x: X) {
        if self.0.len() == self.0.capacity() {
            self.grow();
        }
        self.0.push(x);
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let mut larger = vec((2 * self.0.capacity()).max(4));
        larger.append(&mut self.0);
        recycle(std::mem::replace(&mut self.0, larger));
    }
}

impl<T: Float> PooledVec<T> {
    /// `n` zeros.
    pub(crate) fn zeros(n: usize) -> Self {
        PooledVec(zeros(n))
    }
}

impl<X> FromIterator<X> for PooledVec<X> {
    fn from_iter<I: IntoIterator<Item = X>>(items: I) -> Self {
        let items = items.into_iter();
        let mut v = PooledVec::with_capacity(items.size_hint().0);
        for x in items {
            v.push(x);
        }
        v
    }
}

impl<X: Clone> Clone for PooledVec<X> {
    fn clone(&self) -> Self {
        let mut v = vec(self.0.len());
        v.extend_from_slice(&self.0);
        PooledVec(v)
    }
}

impl<X> Default for PooledVec<X> {
    fn default() -> Self {
        PooledVec::new()
    }
}

impl<X: std::fmt::Debug> std::fmt::Debug for PooledVec<X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl<X> std::ops::Deref for PooledVec<X> {
    type Target = Vec<X>;
    #[inline]
    fn deref(&self) -> &Vec<X> {
        &self.0
    }
}

impl<X> std::ops::DerefMut for PooledVec<X> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Vec<X> {
        &mut self.0
    }
}

impl<X> Drop for PooledVec<X> {
    fn drop(&mut self) {
        recycle(std::mem::take(&mut self.0));
    }
}

/// An owned array whose buffer goes back to the pool when it is dropped: the intermediate
/// values of the backward sweep, gradients, workspaces. [`Pooled::into_array`] takes the
/// array out (it is then the caller's, freed as usual).
pub(crate) struct Pooled<T>(Option<ArrayD<T>>);

impl<T> Pooled<T> {
    #[inline]
    pub(crate) fn new(a: ArrayD<T>) -> Self {
        Pooled(Some(a))
    }

    /// The array, which the caller owns from here on (it is not given back when dropped).
    #[inline]
    pub(crate) fn into_array(mut self) -> ArrayD<T> {
        self.0.take().expect("a pooled array is taken once")
    }
}

impl<T> std::ops::Deref for Pooled<T> {
    type Target = ArrayD<T>;
    #[inline]
    fn deref(&self) -> &ArrayD<T> {
        self.0.as_ref().expect("a pooled array is taken once")
    }
}

impl<T> std::ops::DerefMut for Pooled<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut ArrayD<T> {
        self.0.as_mut().expect("a pooled array is taken once")
    }
}

impl<T> Drop for Pooled<T> {
    #[inline]
    fn drop(&mut self) {
        if let Some(a) = self.0.take() {
            recycle_array(a);
        }
    }
}

impl<T: Clone> Clone for Pooled<T> {
    fn clone(&self) -> Self {
        Pooled::new(copy(self))
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Pooled<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

/// An array on the heap, in a block from the pool: a node's value. Dropping it gives both
/// the array's buffer and the block back.
pub(crate) struct ArrayBox<T>(NonNull<ArrayD<T>>);

impl<T> ArrayBox<T> {
    pub(crate) fn new(a: ArrayD<T>) -> Self {
        let mut slot = ManuallyDrop::new(vec::<ArrayD<T>>(1));
        debug_assert_eq!(slot.capacity(), 1);
        slot.push(a);
        ArrayBox(NonNull::new(slot.as_mut_ptr()).expect("an allocated vector"))
    }
}

impl<T> std::ops::Deref for ArrayBox<T> {
    type Target = ArrayD<T>;
    #[inline]
    fn deref(&self) -> &ArrayD<T> {
        // SAFETY: the pointer is to the one initialised element of the block this box owns
        // (`new`), alive until `drop`; shared access follows `&self`.
        unsafe { self.0.as_ref() }
    }
}

impl<T> std::ops::DerefMut for ArrayBox<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut ArrayD<T> {
        // SAFETY: as for `deref`, with unique access through `&mut self`.
        unsafe { self.0.as_mut() }
    }
}

impl<T> Drop for ArrayBox<T> {
    fn drop(&mut self) {
        // SAFETY: the block is a `Vec<ArrayD<T>>` of capacity 1 whose one element is
        // initialised (`new`); it is rebuilt with that length and capacity exactly once, here,
        // and the element moved out of it (`pop`) before the empty block is recycled.
        let mut slot = unsafe { Vec::from_raw_parts(self.0.as_ptr(), 1, 1) };
        let a = slot.pop().expect("the box's array");
        recycle_array(a);
        recycle(slot);
    }
}

/// A shared value in a block from the pool, counted like an `Rc` (one thread, a thin
/// pointer): an op's attributes (its axes, indices, geometry), which the op and the rules
/// that read it share. The last owner to drop it drops the value and gives the block back.
pub(crate) struct Shared<X>(NonNull<SharedBlock<X>>);

/// The block of a [`Shared`]: its owners' count and the value.
pub(super) struct SharedBlock<X> {
    owners: std::cell::Cell<usize>,
    value: X,
}

/// A list of indices (axes, node indices, positions) shared by an op and its rules.
pub(crate) type SharedList = Shared<PooledVec<usize>>;

impl<X> Shared<X> {
    pub(crate) fn new(value: X) -> Self {
        let mut slot = ManuallyDrop::new(vec::<SharedBlock<X>>(1));
        debug_assert_eq!(slot.capacity(), 1);
        slot.push(SharedBlock {
            owners: std::cell::Cell::new(1),
            value,
        });
        Shared(NonNull::new(slot.as_mut_ptr()).expect("an allocated vector"))
    }

    fn block(&self) -> &SharedBlock<X> {
        // SAFETY: the block is alive while any owner is (`drop` frees it with the last one),
        // and only shared references to it are ever made.
        unsafe { self.0.as_ref() }
    }
}

impl SharedList {
    /// The list `items`, in a buffer from the pool.
    pub(crate) fn list(items: &[usize]) -> Self {
        let mut v = PooledVec::with_capacity(items.len());
        v.extend_from_slice(items);
        Shared::new(v)
    }
}

impl FromIterator<usize> for SharedList {
    fn from_iter<I: IntoIterator<Item = usize>>(items: I) -> Self {
        Shared::new(items.into_iter().collect())
    }
}

impl<X> Clone for Shared<X> {
    fn clone(&self) -> Self {
        let owners = &self.block().owners;
        owners.set(owners.get() + 1);
        Shared(self.0)
    }
}

impl<X> std::ops::Deref for Shared<X> {
    type Target = X;
    #[inline]
    fn deref(&self) -> &X {
        &self.block().value
    }
}

impl<X> Drop for Shared<X> {
    fn drop(&mut self) {
        let owners = &self.block().owners;
        owners.set(owners.get() - 1);
        if owners.get() == 0 {
            // SAFETY: the block is a `Vec<SharedBlock<X>>` of capacity 1 whose one element
            // is initialised (`new`); this was its last owner, so nothing else refers to it,
            // and it is rebuilt exactly once, here: `recycle` drops the element, then keeps
            // or frees the block.
            recycle(unsafe { Vec::from_raw_parts(self.0.as_ptr(), 1, 1) });
        }
    }
}

impl<X: std::fmt::Debug> std::fmt::Debug for Shared<X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}
