//! The gradients being accumulated during a first-order sweep.

use ndarray::ArrayD;

use crate::Float;
use crate::kernels::elementwise::add_assign;
use crate::kernels::pool::{Pooled, PooledVec};
use crate::operand::Arr;

/// A gradient being accumulated during the sweep: nothing yet, one number (a one-element
/// gradient, see [`crate::operand::Number`]), or an array, held in [`SlotTable::arrays`] at
/// this index (so the table of slots stays two words per node and no array is boxed).
#[derive(Clone, Copy)]
pub(super) enum Slot<T> {
    Empty,
    One(T),
    Array(usize),
}

/// The gradients being accumulated during one sweep: a slot per node, and the arrays the
/// slots point to (a gradient array is moved in and out of this table, never boxed or
/// copied). Both lists, and the gradients still in the table when it is dropped, go back to
/// the buffer pool.
pub(super) struct SlotTable<T> {
    slots: PooledVec<Slot<T>>,
    arrays: PooledVec<Option<Pooled<T>>>,
}

impl<T: Float> SlotTable<T> {
    /// Empty slots for nodes `0..len`.
    pub(super) fn new(len: usize) -> Self {
        let mut slots = PooledVec::with_capacity(len);
        slots.resize(len, Slot::Empty);
        SlotTable {
            slots,
            arrays: PooledVec::with_capacity(len.min(8)),
        }
    }

    /// Stores `array` as the gradient of a slot.
    #[inline]
    pub(super) fn put(&mut self, slot: usize, array: ArrayD<T>) {
        self.slots[slot] = Slot::Array(self.arrays.len());
        self.arrays.push(Some(Pooled::new(array)));
    }

    /// Adds `g` to node `slot`'s gradient (the first contribution is moved in, later ones
    /// summed in place), so a value used many times gets the sum of its uses' gradients.
    #[inline]
    pub(super) fn add_array(&mut self, slot: usize, g: Arr<'_, T>) {
        match self.slots[slot] {
            Slot::Empty => self.put(slot, g.into_owned()),
            Slot::One(v) => {
                let mut total = g.into_owned();
                *total.first_mut().expect("a one-element gradient") += v;
                self.put(slot, total);
            }
            Slot::Array(k) => {
                let total = self.arrays[k].as_mut().expect("a gradient not yet taken");
                add_assign(total, g.array());
            }
        }
    }

    /// Adds the gradient of a one-element value.
    #[inline]
    pub(super) fn add_one(&mut self, slot: usize, g: T) {
        match &mut self.slots[slot] {
            slot @ Slot::Empty => *slot = Slot::One(g),
            Slot::One(v) => *v += g,
            &mut Slot::Array(k) => self.add_one_to_array(k, g),
        }
    }

    /// Adds a one-element gradient to an array gradient (off the hot path of `add_one`).
    #[cold]
    #[inline(never)]
    fn add_one_to_array(&mut self, k: usize, g: T) {
        let total = self.arrays[k].as_mut().expect("a gradient not yet taken");
        *total.first_mut().expect("a one-element gradient") += g;
    }

    /// Empties node `slot`'s slot and returns what it held (an array stays in the table
    /// until [`SlotTable::take_array`] moves it out).
    #[inline]
    pub(super) fn take(&mut self, slot: usize) -> Slot<T> {
        std::mem::replace(&mut self.slots[slot], Slot::Empty)
    }

    /// Moves out the array a slot pointed to.
    #[inline]
    pub(super) fn take_array(&mut self, k: usize) -> ArrayD<T> {
        self.arrays[k]
            .take()
            .expect("a gradient taken once")
            .into_array()
    }
}
