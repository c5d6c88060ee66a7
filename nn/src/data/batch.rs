//! Walking a dataset's rows: shuffled orders, gathered rows, and [`Batches`].

use std::slice::Chunks;

use ndarray::{Array, ArrayBase, Axis, Data, RemoveAxis, Slice};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use tapegrad_autograd::memory;

/// A permutation of `0..n`, reproducible from `seed` (`StdRng::seed_from_u64` + Fisher–Yates).
///
/// The same `seed` gives the same order on every platform for a given version of `rand`
/// (`StdRng`'s algorithm may change between `rand` releases).
pub fn shuffled_indices(n: usize, seed: u64) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..n).collect();
    indices.shuffle(&mut StdRng::seed_from_u64(seed));
    indices
}

/// Gathers the rows (entries along axis 0) of `array` listed in `indices`, in that order;
/// indices may repeat. Works for owned arrays and views of any dimensionality ≥ 1. The rows
/// of a row-major array are copied into a buffer from the calling thread's pool
/// ([`memory`](tapegrad_autograd::memory)), where a tape that takes the batch as a constant
/// gives it back.
///
/// ```
/// use ndarray::array;
/// use tapegrad_nn::data::take_rows;
///
/// let x = array![[0, 1], [2, 3], [4, 5]];
/// assert_eq!(take_rows(&x, &[2, 0]), array![[4, 5], [0, 1]]);
/// ```
///
/// # Panics
///
/// If an index is `>= array.len_of(Axis(0))` (a caller bug, like out-of-bounds indexing).
pub fn take_rows<T, S, D>(array: &ArrayBase<S, D>, indices: &[usize]) -> Array<T, D>
where
    T: Clone,
    S: Data<Elem = T>,
    D: RemoveAxis,
{
    let consecutive = indices.windows(2).all(|w| w[1] == w[0] + 1);
    if let (true, Some(&start)) = (consecutive, indices.first()) {
        // A run of rows is one slice: a single copy.
        let run = array.slice_axis(Axis(0), Slice::from(start..start + indices.len()));
        let Some(run_data) = run.as_slice() else {
            return run.to_owned();
        };
        let mut data = memory::vec(run_data.len());
        data.extend_from_slice(run_data);
        return Array::from_shape_vec(run.raw_dim(), data).expect("the run's shape");
    }
    let Some(all) = array.as_slice() else {
        return array.select(Axis(0), indices);
    };
    // Row-major data: each row is one contiguous run of `row_len` elements.
    let row_len: usize = array.shape()[1..].iter().product();
    let rows = array.len_of(Axis(0));
    let mut data = memory::vec(indices.len() * row_len);
    for &r in indices {
        assert!(
            r < rows,
            "take_rows: index {r} is out of bounds for {rows} rows"
        );
        data.extend_from_slice(&all[r * row_len..(r + 1) * row_len]);
    }
    let mut dim = array.raw_dim();
    dim[0] = indices.len();
    Array::from_shape_vec(dim, data).expect("the gathered rows fill the batch shape exactly")
}

/// The batches of row indices of a dataset of `n` rows, epoch after epoch: in order, or in a
/// new random order every epoch drawn from a seed. This is the batching of
/// [`Model::fit`](crate::model::Model::fit), [`evaluate`](crate::model::Model::evaluate)
/// and [`predict`](crate::model::Model::predict), for hand-written training loops.
///
/// [`epoch`](Batches::epoch) yields each batch's row indices;
/// [`epoch_xy`](Batches::epoch_xy) gathers the rows of `x` and `y` (one copy per array and
/// batch, see [`take_rows`]). Every batch holds `batch_size` rows but the last, which may
/// hold fewer. A shuffled walk reshuffles its order at the start of every epoch, so the
/// order of epoch `k` depends only on the seed and `k`; the first epoch's order is
/// [`shuffled_indices`]`(n, seed)`.
///
/// ```
/// use ndarray::array;
/// use tapegrad_nn::data::Batches;
///
/// let x = array![[0.0_f32, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]];
/// let y = array![0.0_f32, 1.0, 2.0, 3.0, 4.0];
///
/// let mut in_order = Batches::in_order(5, 2);
/// assert_eq!(in_order.len(), 3);
/// let rows: Vec<&[usize]> = in_order.epoch().collect();
/// assert_eq!(rows, [&[0, 1][..], &[2, 3], &[4]]);
///
/// let mut shuffled = Batches::shuffled(5, 2, 42);
/// for epoch in 0..3 {
///     let mut seen = 0;
///     for (bx, by) in shuffled.epoch_xy(&x, &y) {
///         // One gradient step on (bx, by) goes here.
///         assert_eq!(bx.column(0), by);
///         seen += by.len();
///     }
///     assert_eq!(seen, 5, "epoch {epoch} visits every row once");
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Batches {
    order: Vec<usize>,
    batch_size: usize,
    /// The seed and the generator of the next epoch's order; `None` walks the rows in order.
    rng: Option<(u64, StdRng)>,
    /// How many epochs [`epoch`](Batches::epoch) started.
    epochs_started: u64,
}

impl Batches {
    /// Rows `0..n` in order, in batches of `batch_size`.
    ///
    /// # Panics
    ///
    /// If `batch_size` is 0.
    pub fn in_order(n: usize, batch_size: usize) -> Self {
        assert!(batch_size > 0, "Batches: batch_size must be at least 1");
        Batches {
            order: (0..n).collect(),
            batch_size,
            rng: None,
            epochs_started: 0,
        }
    }

    /// Rows `0..n` in batches of `batch_size`, reshuffled at the start of every epoch by a
    /// generator seeded with `seed` (`StdRng::seed_from_u64` + Fisher–Yates, as
    /// [`shuffled_indices`]).
    ///
    /// # Panics
    ///
    /// If `batch_size` is 0.
    pub fn shuffled(n: usize, batch_size: usize, seed: u64) -> Self {
        Batches {
            rng: Some((seed, StdRng::seed_from_u64(seed))),
            ..Batches::in_order(n, batch_size)
        }
    }

    /// The number of batches in an epoch.
    pub fn len(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }

    /// Whether an epoch has no batch (the dataset has no row).
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The number of rows an epoch visits.
    pub fn num_rows(&self) -> usize {
        self.order.len()
    }

    /// The rows per batch (the last batch of an epoch may hold fewer).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The seed of a shuffled walk (`None` in order).
    pub fn seed(&self) -> Option<u64> {
        self.rng.as_ref().map(|(seed, _)| *seed)
    }

    /// How many epochs [`epoch`](Batches::epoch) started (the next one is numbered this,
    /// from 0).
    pub fn epochs_started(&self) -> u64 {
        self.epochs_started
    }

    /// Puts the walk where it was after `epochs` calls of [`epoch`](Batches::epoch), so
    /// that the next call starts epoch `epochs` with the order an uninterrupted walk gives
    /// it: how a resumed training loop finds its place (see
    /// [`TrainingSnapshot`](crate::snapshot::TrainingSnapshot)). A shuffled walk is reseeded
    /// and replays the shuffles of the epochs before (`epochs · rows` swaps).
    ///
    /// ```
    /// use tapegrad_nn::data::Batches;
    ///
    /// let mut walk = Batches::shuffled(10, 4, 7);
    /// let orders: Vec<Vec<usize>> =
    ///     (0..3).map(|_| walk.epoch().flatten().copied().collect()).collect();
    /// let mut resumed = Batches::shuffled(10, 4, 7);
    /// resumed.seek_epoch(2);
    /// assert_eq!(resumed.epochs_started(), 2);
    /// assert_eq!(resumed.epoch().flatten().copied().collect::<Vec<_>>(), orders[2]);
    /// ```
    pub fn seek_epoch(&mut self, epochs: u64) {
        self.order.sort_unstable();
        self.epochs_started = 0;
        if let Some((seed, rng)) = &mut self.rng {
            *rng = StdRng::seed_from_u64(*seed);
            for _ in 0..epochs {
                self.order.shuffle(rng);
            }
        }
        self.epochs_started = epochs;
    }

    /// Starts an epoch (reshuffling the order when shuffled) and yields the row indices of
    /// its batches.
    pub fn epoch(&mut self) -> Chunks<'_, usize> {
        if let Some((_, rng)) = &mut self.rng {
            self.order.shuffle(rng);
        }
        self.epochs_started += 1;
        self.order.chunks(self.batch_size)
    }

    /// Starts an epoch, as [`epoch`](Batches::epoch), and yields each batch's rows of `x`
    /// and of `y` (samples along axis 0), gathered with [`take_rows`].
    ///
    /// # Panics
    ///
    /// While iterating, if `x` or `y` has fewer rows than the walk visits.
    pub fn epoch_xy<'a, A, B, SX, SY, DX, DY>(
        &'a mut self,
        x: &'a ArrayBase<SX, DX>,
        y: &'a ArrayBase<SY, DY>,
    ) -> impl Iterator<Item = (Array<A, DX>, Array<B, DY>)> + 'a
    where
        A: Clone,
        B: Clone,
        SX: Data<Elem = A>,
        SY: Data<Elem = B>,
        DX: RemoveAxis,
        DY: RemoveAxis,
    {
        self.epoch()
            .map(move |rows| (take_rows(x, rows), take_rows(y, rows)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn, array};

    #[test]
    fn shuffled_indices_is_a_deterministic_permutation() {
        let a = shuffled_indices(1000, 42);
        assert_eq!(a, shuffled_indices(1000, 42));
        assert_ne!(a, shuffled_indices(1000, 43));
        assert_ne!(a, (0..1000).collect::<Vec<_>>());
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert!(shuffled_indices(0, 1).is_empty());
    }

    #[test]
    fn take_rows_gathers_along_axis_0() {
        let x = ArrayD::from_shape_vec(IxDyn(&[3, 2, 2]), (0..12).collect()).unwrap();
        let picked = take_rows(&x, &[2, 0, 2]);
        assert_eq!(picked.shape(), &[3, 2, 2]);
        assert_eq!(picked.index_axis(Axis(0), 0), x.index_axis(Axis(0), 2));
        assert_eq!(picked.index_axis(Axis(0), 1), x.index_axis(Axis(0), 0));
        let labels = array![5_u8, 6, 7];
        assert_eq!(take_rows(&labels.view(), &[1, 1]), array![6, 6]);
        assert_eq!(take_rows(&labels, &[]).len(), 0);
    }

    #[test]
    fn take_rows_of_views_in_any_layout() {
        let x = ArrayD::from_shape_vec(IxDyn(&[3, 2]), (0..6).collect()).unwrap();
        let t = x.t();
        assert_eq!(
            take_rows(&t, &[1, 0]),
            array![[1, 3, 5], [0, 2, 4]].into_dyn()
        );
        assert_eq!(take_rows(&x, &[1, 2]), array![[2, 3], [4, 5]].into_dyn());
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn take_rows_checks_indices() {
        take_rows(&array![[1, 2], [3, 4]], &[1, 2, 0]);
    }

    #[test]
    fn batches_cover_every_row_once_per_epoch() {
        let mut batches = Batches::shuffled(10, 4, 7);
        assert_eq!(
            (batches.len(), batches.num_rows(), batches.batch_size()),
            (3, 10, 4)
        );
        let first: Vec<usize> = batches.epoch().flatten().copied().collect();
        assert_eq!(first, shuffled_indices(10, 7));
        let sizes: Vec<usize> = batches.epoch().map(<[usize]>::len).collect();
        assert_eq!(sizes, [4, 4, 2]);
        let mut second: Vec<usize> = batches.epoch().flatten().copied().collect();
        assert_ne!(second, first);
        second.sort_unstable();
        assert_eq!(second, (0..10).collect::<Vec<_>>());
        assert!(Batches::in_order(0, 3).is_empty());
        assert_eq!(Batches::in_order(0, 3).epoch().count(), 0);
    }
}
