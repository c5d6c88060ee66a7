//! Histograms of arrays as [`HistogramProto`]s: equal-width buckets over the finite
//! values, laid out as PyTorch's `make_histogram` lays them out.

use super::proto::HistogramProto;

/// The number of equal-width buckets of a histogram (TensorFlow 2's
/// `tf.summary.histogram` default).
pub const BUCKETS: usize = 30;

/// The histogram of the finite values of `values` in [`BUCKETS`] equal-width buckets from
/// their minimum to their maximum (a single bucket of width 1 centred on the value when
/// they are all equal), or `None` when no value is finite.
///
/// TensorBoard reads bucket `i` as the values in `(bucket_limit[i - 1], bucket_limit[i]]`,
/// so, as in PyTorch, the first bucket is an empty one ending at the lowest edge, and each
/// next bucket ends at its right edge (the lowest value counts in the first non-empty
/// bucket).
pub(crate) fn histogram<I>(values: I) -> Option<HistogramProto>
where
    I: IntoIterator<Item = f64>,
    I::IntoIter: Clone,
{
    // Two passes over the values, nothing copied: the summary statistics, then the counts.
    let values = values.into_iter();
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut num, mut sum, mut sum_squares) = (0usize, 0.0, 0.0);
    for v in values.clone().filter(|v| v.is_finite()) {
        min = min.min(v);
        max = max.max(v);
        num += 1;
        sum += v;
        sum_squares += v * v;
    }
    if num == 0 {
        return None;
    }
    let (low, high, buckets) = if min == max {
        (min - 0.5, max + 0.5, 1)
    } else {
        (min, max, BUCKETS)
    };
    let width = (high - low) / buckets as f64;
    let per_width = width.recip();
    let mut limits: Vec<f64> = (0..buckets).map(|i| low + width * i as f64).collect();
    limits.push(high);
    let mut counts = vec![0.0; buckets + 1];
    for v in values.filter(|v| v.is_finite()) {
        // Bucket `i` holds [limits[i], limits[i + 1]) (the last one its right edge too):
        // the product's guess, moved so that rounding never contradicts the limits.
        let mut i = (((v - low) * per_width) as usize).min(buckets - 1);
        while i > 0 && v < limits[i] {
            i -= 1;
        }
        while i + 1 < buckets && v >= limits[i + 1] {
            i += 1;
        }
        counts[i + 1] += 1.0;
    }
    Some(HistogramProto {
        min,
        max,
        num: num as f64,
        sum,
        sum_squares,
        bucket_limit: limits,
        bucket: counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_finite_value_once_in_its_bucket() {
        let h = histogram([0.0, 1.0, 2.0, 3.0, f64::NAN, f64::INFINITY]).unwrap();
        assert_eq!(
            (h.min, h.max, h.num, h.sum, h.sum_squares),
            (0.0, 3.0, 4.0, 6.0, 14.0)
        );
        assert_eq!(h.bucket.len(), BUCKETS + 1);
        assert_eq!(h.bucket_limit.len(), BUCKETS + 1);
        assert_eq!((h.bucket_limit[0], h.bucket_limit[BUCKETS]), (0.0, 3.0));
        assert_eq!(h.bucket.iter().sum::<f64>(), 4.0);
        // 0 in the first bucket (0, 0.1], 3 in the last one.
        assert_eq!(
            (h.bucket[0], h.bucket[1], h.bucket[BUCKETS]),
            (0.0, 1.0, 1.0)
        );
    }

    #[test]
    fn equal_values_fill_one_bucket_and_no_finite_value_gives_none() {
        let h = histogram([2.0; 5]).unwrap();
        assert_eq!(h.bucket, [0.0, 5.0]);
        assert_eq!(h.bucket_limit, [1.5, 2.5]);
        assert!(histogram([f64::NAN]).is_none());
        assert!(histogram([]).is_none());
    }
}
