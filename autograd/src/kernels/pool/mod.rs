//! The buffer pool: the library's own cache of heap blocks, one per thread, so that a
//! training loop reuses the memory of its previous step instead of asking the allocator
//! (and the operating system, page by page) for it again.
//!
//! Kernels take their outputs and workspaces from it ([`vec`], [`zeros`], [`Pooled`]); the
//! tape gives its values back when it is dropped, the backward sweep its intermediate
//! gradients when it is done with them, and [`Grads`](crate::Grads) its arrays when it is
//! dropped. A step of a training loop then finds every buffer it needs where the previous
//! step left it. Nothing outside the library is changed: the process's allocator keeps its
//! own policy.
//!
//! Blocks are kept by layout: the element's size and alignment, and a capacity class. A
//! request for `n` elements gets a block of the class's capacity, the smallest of the form
//! `q · 2^e` with `q` in `5..=8` (or `n` itself up to 4) that holds `n`: four classes per
//! octave, so a block is at most 25 % larger than asked for, while the repeated sizes of a
//! training loop keep finding their own class. A block goes back to its class only if its
//! capacity is a class capacity (a vector made elsewhere is freed as usual), so every block
//! handed out has exactly the layout it was allocated with.
//!
//! A class keeps at most as many blocks as it ever had handed out at once: what a step
//! needs of it, and no more. Buffers the pool did not hand out (a batch the caller built, an
//! array given to [`Tape::constant`](crate::Tape::constant)) come back to it all the same
//! when the tape is dropped; without that bound they would pile up, one more each step.
//!
//! Each thread keeps at most [`limit`] bytes (1 GiB by default, [`set_limit`]); a block
//! given back beyond that is freed. [`release`] frees the calling thread's blocks now, and a
//! thread's blocks are freed when it exits.

use std::alloc::Layout;
use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::{ArrayD, IxDyn};

use crate::Float;

mod owners;
#[cfg(test)]
mod tests;

pub(crate) use owners::{ArrayBox, Pooled, PooledVec, Shared, SharedList};

/// Bytes a thread's pool keeps at most, unless [`set_limit`] changes it.
const DEFAULT_LIMIT: usize = 1 << 30;

static LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_LIMIT);

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { shelves: Vec::new(), bytes: 0 }) };
}

/// One thread's free blocks.
struct Pool {
    /// One shelf per element layout (a handful: `f32`, `f64`, `usize`, boxed arrays, ...).
    shelves: Vec<Shelf>,
    /// The bytes of all the blocks held.
    bytes: usize,
}

/// The free blocks of one element layout, by capacity class.
struct Shelf {
    size: usize,
    align: usize,
    classes: Vec<Class>,
}

/// The free blocks of one capacity class, and how many it has handed out.
#[derive(Default)]
struct Class {
    free: Vec<NonNull<u8>>,
    /// Blocks handed out and not given back (a block given back that the pool did not hand
    /// out counts as one of them).
    out: usize,
    /// The most blocks ever out at once: the most the class keeps.
    peak: usize,
}

impl Pool {
    fn shelf(&mut self, size: usize, align: usize) -> &mut Shelf {
        let at = match self
            .shelves
            .iter()
            .position(|s| s.size == size && s.align == align)
        {
            Some(at) => at,
            None => {
                self.shelves.push(Shelf {
                    size,
                    align,
                    classes: Vec::new(),
                });
                self.shelves.len() - 1
            }
        };
        &mut self.shelves[at]
    }

    /// Frees every block held.
    fn release(&mut self) -> usize {
        let released = self.bytes;
        for shelf in &mut self.shelves {
            for (class, blocks) in shelf.classes.iter_mut().enumerate() {
                let layout = block_layout(shelf.size, shelf.align, class_capacity(class));
                for block in blocks.free.drain(..) {
                    // SAFETY: every block on this list was allocated by the global allocator
                    // with this layout (see `recycle`), and is owned by the pool alone.
                    unsafe { std::alloc::dealloc(block.as_ptr(), layout) };
                }
            }
        }
        self.bytes = 0;
        released
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.release();
    }
}

/// The layout of a block of `capacity` elements of `size` bytes aligned to `align`: the
/// layout `Vec` allocates for that capacity.
fn block_layout(size: usize, align: usize, capacity: usize) -> Layout {
    Layout::from_size_align(size * capacity, align).expect("a block that was allocated")
}

/// The largest capacity the classes go up to (`8 · 2^(BITS - 5)`, so that no class capacity
/// overflows); larger vectors bypass the pool.
const LARGEST_CLASS: usize = 1 << (usize::BITS - 2);

/// The index of the smallest capacity class that holds `n > 0` elements
/// (`n <= LARGEST_CLASS`).
fn class_of(n: usize) -> usize {
    if n <= 4 {
        return n - 1;
    }
    // n in (4·2^e, 8·2^e]: the class capacity is q·2^e with q = ⌈n / 2^e⌉ in 5..=8.
    let e = (usize::BITS - 1 - (n - 1).leading_zeros()) as usize - 2;
    let q = (n - 1) >> e; // ⌈n / 2^e⌉ - 1, in 4..=7
    4 + 4 * e + (q - 4)
}

/// The capacity of class `class`.
fn class_capacity(class: usize) -> usize {
    if class < 4 {
        return class + 1;
    }
    let (e, q) = ((class - 4) / 4, (class - 4) % 4 + 5);
    q << e
}

/// An empty vector with room for at least `capacity` elements, from the calling thread's
/// pool when it holds a block of the right class.
pub fn vec<X>(capacity: usize) -> Vec<X> {
    if capacity == 0 || size_of::<X>() == 0 {
        return Vec::new();
    }
    if capacity > LARGEST_CLASS {
        return Vec::with_capacity(capacity);
    }
    let class = class_of(capacity);
    let block = POOL
        .try_with(|pool| {
            let mut pool = pool.try_borrow_mut().ok()?;
            let shelf = pool.shelf(size_of::<X>(), align_of::<X>());
            if shelf.classes.len() <= class {
                shelf.classes.resize_with(class + 1, Class::default);
            }
            let counts = &mut shelf.classes[class];
            counts.out += 1;
            counts.peak = counts.peak.max(counts.out);
            let block = counts.free.pop()?;
            pool.bytes -= size_of::<X>() * class_capacity(class);
            Some(block)
        })
        .ok()
        .flatten();
    match block {
        // SAFETY: the block was allocated by the global allocator with the layout of a
        // `Vec<Y>` of `class_capacity(class)` elements, `Y` of `X`'s size and alignment
        // (`recycle` keeps blocks by exactly that), which is `Vec<X>`'s layout for that
        // capacity; it holds no live value and the pool gave up its pointer.
        Some(block) => unsafe {
            Vec::from_raw_parts(block.cast().as_ptr(), 0, class_capacity(class))
        },
        // `Vec::with_capacity` allocates exactly the capacity asked for.
        None => Vec::with_capacity(class_capacity(class)),
    }
}

/// Empties `v` (dropping its elements) and keeps its block in the calling thread's pool, if
/// its capacity is a class capacity and the pool has room; frees it otherwise.
pub fn recycle<X>(mut v: Vec<X>) {
    v.clear();
    let capacity = v.capacity();
    if capacity == 0 || size_of::<X>() == 0 || capacity > LARGEST_CLASS {
        return;
    }
    let class = class_of(capacity);
    if class_capacity(class) != capacity {
        return;
    }
    let bytes = size_of::<X>() * capacity;
    let mut v = ManuallyDrop::new(v);
    let block = NonNull::new(v.as_mut_ptr().cast::<u8>()).expect("an allocated vector");
    let kept = POOL
        .try_with(|pool| {
            let Ok(mut pool) = pool.try_borrow_mut() else {
                return false;
            };
            let held = pool.bytes;
            let shelf = pool.shelf(size_of::<X>(), align_of::<X>());
            let Some(counts) = shelf.classes.get_mut(class) else {
                return false; // a class the pool never handed out
            };
            counts.out = counts.out.saturating_sub(1);
            if counts.free.len() >= counts.peak || held + bytes > LIMIT.load(Ordering::Relaxed) {
                return false;
            }
            counts.free.push(block);
            pool.bytes += bytes;
            true
        })
        .unwrap_or(false);
    if !kept {
        // SAFETY: `v` was not dropped (`ManuallyDrop`) and still owns its block: dropping
        // it frees the block as the vector would have.
        unsafe { ManuallyDrop::drop(&mut v) };
    }
}

/// Gives the buffer of `a` back to the pool ([`recycle`]).
pub fn recycle_array<X, D: ndarray::Dimension>(a: ndarray::Array<X, D>) {
    recycle(a.into_raw_vec_and_offset().0);
}

/// `n` zeros, in a buffer from the pool.
pub(crate) fn zeros<T: Float>(n: usize) -> Vec<T> {
    let mut v = vec(n);
    v.resize(n, T::zero());
    v
}

/// An array of `shape` filled with `value`, in a buffer from the pool.
pub(crate) fn filled<T: Float>(shape: &[usize], value: T) -> ArrayD<T> {
    let n = shape.iter().product();
    let mut v = vec(n);
    v.resize(n, value);
    ArrayD::from_shape_vec(IxDyn(shape), v).expect("one element per index")
}

/// An array of `shape` with the elements of `data`, in standard layout, in a buffer from
/// the pool.
pub(crate) fn from_slice<T: Float>(shape: &[usize], data: &[T]) -> ArrayD<T> {
    let mut v = vec(data.len());
    v.extend_from_slice(data);
    ArrayD::from_shape_vec(IxDyn(shape), v).expect("one element per index")
}

/// The bytes the calling thread's pool holds.
pub fn held() -> usize {
    POOL.try_with(|pool| pool.borrow().bytes).unwrap_or(0)
}

/// Frees every block the calling thread's pool holds; returns how many bytes that was.
pub fn release() -> usize {
    POOL.try_with(|pool| pool.borrow_mut().release())
        .unwrap_or(0)
}

/// The most bytes each thread's pool keeps.
pub fn limit() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

/// Sets the most bytes each thread's pool keeps (blocks given back beyond it are freed).
/// Blocks held above a lower limit stay until they are taken or [`release`]d.
pub fn set_limit(bytes: usize) {
    LIMIT.store(bytes, Ordering::Relaxed);
}

/// A copy of `a`: one copy of its memory into a buffer from the pool when it is in standard
/// layout, `a.clone()` otherwise.
pub(crate) fn copy<T: Clone>(a: &ArrayD<T>) -> ArrayD<T> {
    match a.as_slice_memory_order() {
        Some(data) if a.is_standard_layout() => {
            let mut v = vec(data.len());
            v.extend_from_slice(data);
            ArrayD::from_shape_vec(a.raw_dim(), v).expect("one element per index")
        }
        _ => a.clone(),
    }
}
