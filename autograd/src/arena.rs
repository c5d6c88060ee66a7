//! The tape's node store: an append-only list in fixed-size chunks.
//!
//! A `Vec` that doubles would copy every node each time it grows, and for tapes of a few
//! thousand nodes its buffer passes the allocator's `mmap` threshold, so each new tape
//! would fault in fresh pages. Chunks of [`CHUNK`] nodes never move once allocated, stay
//! small enough to be recycled by the allocator from one tape to the next, and an index is
//! still two shifts away from its node. Only the first chunk grows (from as many nodes as fit
//! in 1 KiB), so a short tape allocates little.

use std::ops::Index;

/// Log₂ of the number of nodes per chunk.
const CHUNK_SHIFT: usize = 8;
/// Nodes per chunk.
const CHUNK: usize = 1 << CHUNK_SHIFT;
/// The largest first chunk, in bytes, that glibc's allocator serves from its per-thread
/// cache (`tcache` bins go up to 1,032 bytes): a tape is created and dropped every training
/// step, and callgrind counted ~1,000 fewer instructions per step of the article's line fit
/// with a first chunk of 968 bytes than of 1,408.
const FIRST_CHUNK_BYTES: usize = 1024;

/// An append-only list in chunks of [`CHUNK`] elements, indexed like a slice.
pub(crate) struct Arena<N> {
    chunks: Vec<Vec<N>>,
    len: usize,
}

impl<N> Arena<N> {
    /// The initial capacity of the first chunk: as many elements as fit in
    /// [`FIRST_CHUNK_BYTES`].
    const FIRST_CAPACITY: usize = {
        // Zero-sized elements take no room: a whole chunk.
        let fit = match FIRST_CHUNK_BYTES.checked_div(std::mem::size_of::<N>()) {
            Some(fit) => fit,
            None => CHUNK,
        };
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

    /// Appends `value` and returns its index.
    #[inline(always)]
    pub(crate) fn push(&mut self, value: N) -> usize {
        let index = self.len;
        if index & (CHUNK - 1) == 0 && index >> CHUNK_SHIFT == self.chunks.len() {
            // The first chunk starts small and grows like a `Vec` (most tapes of a training
            // step are short); later chunks are allocated whole.
            let capacity = if index == 0 {
                Self::FIRST_CAPACITY
            } else {
                if index == CHUNK {
                    // The first chunk doubled from a capacity that need not be a power of
                    // two: give back what it holds past `CHUNK` (once, off the hot path).
                    self.chunks[0].shrink_to_fit();
                }
                CHUNK
            };
            self.chunks.push(Vec::with_capacity(capacity));
        }
        self.chunks[index >> CHUNK_SHIFT].push(value);
        self.len += 1;
        index
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_across_chunks_and_truncates() {
        let mut arena = Arena::new();
        for i in 0..3 * CHUNK + 5 {
            assert_eq!(arena.push(i), i);
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
        assert_eq!(arena.push(7), CHUNK + 1);
        assert_eq!(arena[CHUNK + 1], 7);
        arena.truncate(CHUNK);
        assert_eq!(arena.push(9), CHUNK);
        assert_eq!(arena[CHUNK], 9);
        arena.truncate(0);
        assert!(arena.is_empty());
        assert_eq!(arena.push(1), 0);
        assert_eq!(arena[0], 1);
    }

    #[test]
    fn a_first_chunk_of_odd_capacity_grows_to_chunk_and_no_further() {
        // A node-sized element: the first chunk starts at 1024 / 88 = 11 elements.
        let mut arena: Arena<[u64; 11]> = Arena::new();
        assert_eq!(Arena::<[u64; 11]>::FIRST_CAPACITY, 11);
        for i in 0..CHUNK + 3 {
            assert_eq!(arena.push([i as u64; 11]), i);
        }
        assert_eq!(arena.capacity(), 2 * CHUNK);
        assert!((0..arena.len()).all(|i| arena[i][10] == i as u64));
    }
}
