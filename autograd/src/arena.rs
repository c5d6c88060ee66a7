//! The tape's node store: an append-only list in fixed-size chunks.
//!
//! A `Vec` that doubles would copy every node each time it grows, and for tapes of a few
//! thousand nodes its buffer passes the allocator's `mmap` threshold, so each new tape
//! would fault in fresh pages. Chunks of [`CHUNK`] nodes never move once allocated, stay
//! small enough to be recycled by the allocator from one tape to the next, and an index is
//! still two shifts away from its node. Only the first chunk grows (from as many nodes as fit
//! in 1 KiB, doubling up to [`CHUNK`]), so a short tape allocates little. No chunk holds more
//! than [`CHUNK`] elements, whatever capacity the allocator hands back: element `i` is
//! element `i % CHUNK` of chunk `i / CHUNK`.
//!
//! A thread that recorded a long tape starts its next ones at that length
//! ([`LONGEST`]): its first chunk is whole and the list of chunks has room for all of
//! them, so a training step's tape allocates one block per [`CHUNK`] nodes and one for the
//! list, not also the first chunk's doublings. (The blocks cannot go back to the buffer
//! pool: a drop hook on a type that holds the tape's lifetime would make the tape outlive
//! its own borrows.)

use std::cell::Cell;
use std::ops::{Index, IndexMut};

/// Log₂ of the number of nodes per chunk.
const CHUNK_SHIFT: usize = 8;
/// Nodes per chunk.
const CHUNK: usize = 1 << CHUNK_SHIFT;
/// The largest first chunk, in bytes, that glibc's allocator serves from its per-thread
/// cache (`tcache` bins go up to 1,032 bytes): a tape is created and dropped every training
/// step, and callgrind counted ~1,000 fewer instructions per step of the article's line fit
/// with a first chunk of 968 bytes than of 1,408.
const FIRST_CHUNK_BYTES: usize = 1024;

thread_local! {
    /// The most elements an arena of this thread has had room for.
    static LONGEST: Cell<usize> = const { Cell::new(0) };
}

/// An append-only list in chunks of [`CHUNK`] elements, indexed like a slice.
pub(crate) struct Arena<N> {
    chunks: Vec<Vec<N>>,
    len: usize,
}

impl<N> Arena<N> {
    /// The initial capacity of the first chunk: as many elements as fit in
    /// [`FIRST_CHUNK_BYTES`].
    const FIRST_CAPACITY: usize = {
        let fit = FIRST_CHUNK_BYTES / std::mem::size_of::<N>();
        if fit == 0 {
            1
        } else if fit > CHUNK {
            CHUNK
        } else {
            fit
        }
    };

    pub(crate) fn new() -> Self {
        Arena {
            chunks: Vec::new(),
            len: 0,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of elements the allocated chunks can hold.
    pub(crate) fn capacity(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum()
    }

    /// Appends the value `make` returns and returns its index. The hot path is one test (the
    /// last chunk has room), after which `make`'s value is written straight into the chunk:
    /// `Vec::push`'s own capacity test is implied by this one, and `make` runs after it, so
    /// the value is not held on the stack across a possible reallocation.
    #[inline(always)]
    pub(crate) fn push_with(&mut self, make: impl FnOnce() -> N) -> usize {
        let index = self.len;
        if let Some(chunk) = self.chunks.last_mut()
            && chunk.len() < chunk.capacity()
        {
            chunk.push(make());
        } else {
            self.grow().push(make());
        }
        self.len = index + 1;
        index
    }

    /// Makes room for one more element and returns the chunk that has it: the first chunk
    /// starts small and doubles up to [`CHUNK`] (most tapes of a training step are short);
    /// later chunks are allocated whole. No chunk's capacity exceeds [`CHUNK`]
    /// (`Vec::with_capacity` gives exactly the capacity asked for, and a first chunk that
    /// `reserve_exact` would leave larger is moved to one of exact capacity).
    #[cold]
    #[inline(never)]
    fn grow(&mut self) -> &mut Vec<N> {
        const {
            assert!(
                std::mem::size_of::<N>() > 0,
                "an arena of zero-sized elements"
            )
        };
        let longest = LONGEST.with(Cell::get);
        match self.chunks.last_mut() {
            None => {
                if self.chunks.capacity() == 0 {
                    self.chunks = Vec::with_capacity(longest.div_ceil(CHUNK).max(4));
                }
                let first = longest.clamp(Self::FIRST_CAPACITY, CHUNK);
                self.chunks.push(Vec::with_capacity(first));
            }
            // Only the first chunk fills up before holding `CHUNK` elements. It grows in
            // place when the allocator can extend it.
            Some(first) if first.len() < CHUNK => {
                let len = first.len();
                let target = (2 * len).clamp(len + 1, CHUNK);
                LONGEST.with(|l| l.set(l.get().max(target)));
                first.reserve_exact(target - len);
                if first.capacity() > CHUNK {
                    let mut exact = Vec::with_capacity(target);
                    exact.append(first);
                    *first = exact;
                }
            }
            Some(_) => {
                LONGEST.with(|l| l.set(l.get().max(self.len + CHUNK)));
                self.chunks.push(Vec::with_capacity(CHUNK));
            }
        }
        self.chunks.last_mut().expect("a chunk was just made")
    }

    /// Drops every element from index `len` on.
    pub(crate) fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let keep = len.div_ceil(CHUNK);
        self.chunks.truncate(keep);
        if keep > 0 {
            self.chunks[keep - 1].truncate(len - (keep - 1) * CHUNK);
        }
        self.len = len;
    }

    /// The elements in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &N> {
        self.chunks.iter().flatten()
    }
}

impl<N> Index<usize> for Arena<N> {
    type Output = N;
    #[inline]
    fn index(&self, index: usize) -> &N {
        &self.chunks[index >> CHUNK_SHIFT][index & (CHUNK - 1)]
    }
}

impl<N> IndexMut<usize> for Arena<N> {
    #[inline]
    fn index_mut(&mut self, index: usize) -> &mut N {
        &mut self.chunks[index >> CHUNK_SHIFT][index & (CHUNK - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_across_chunks_and_truncates() {
        let mut arena = Arena::new();
        for i in 0..3 * CHUNK + 5 {
            assert_eq!(arena.push_with(|| i), i);
        }
        assert_eq!(arena.len(), 3 * CHUNK + 5);
        assert_eq!(
            arena.capacity(),
            4 * CHUNK,
            "the first chunk stops growing at CHUNK"
        );
        assert!((0..arena.len()).all(|i| arena[i] == i));
        assert!(arena.iter().copied().eq(0..3 * CHUNK + 5));
        arena.truncate(CHUNK + 1);
        assert_eq!(arena.len(), CHUNK + 1);
        assert_eq!(arena.iter().count(), CHUNK + 1);
        assert_eq!(arena.push_with(|| 7), CHUNK + 1);
        assert_eq!(arena[CHUNK + 1], 7);
        arena.truncate(CHUNK);
        assert_eq!(arena.push_with(|| 9), CHUNK);
        assert_eq!(arena[CHUNK], 9);
        arena.truncate(0);
        assert!(arena.is_empty());
        assert_eq!(arena.push_with(|| 1), 0);
        assert_eq!(arena[0], 1);
    }

    #[test]
    fn a_first_chunk_of_odd_capacity_grows_to_chunk_and_no_further() {
        // An 88-byte element: the first chunk starts at 1024 / 88 = 11 elements.
        let mut arena: Arena<[u64; 11]> = Arena::new();
        assert_eq!(Arena::<[u64; 11]>::FIRST_CAPACITY, 11);
        for i in 0..CHUNK + 3 {
            assert_eq!(arena.push_with(|| [i as u64; 11]), i);
        }
        assert_eq!(arena.capacity(), 2 * CHUNK);
        assert!((0..arena.len()).all(|i| arena[i][10] == i as u64));
    }
}
