//! Reading a classifier's predictions: the class with the highest score, a confusion
//! matrix, per-class accuracy, and the accuracy of a coarser question (is it one of these
//! classes or not?), printed as plain-text tables.
//!
//! ```
//! use ndarray::array;
//! use tapegrad::report::{argmax_rows, ConfusionMatrix};
//!
//! let logits = array![[2.0_f32, 0.1, 0.3], [0.0, 1.5, -1.0], [0.2, 0.1, 0.9], [3.0, 0.0, 0.0]];
//! let predicted = argmax_rows(&logits.into_dyn());
//! assert_eq!(predicted, vec![0, 1, 2, 0]);
//!
//! let truth = [0, 1, 1, 2];
//! let matrix = ConfusionMatrix::new(&truth, &predicted, 3);
//! assert_eq!(matrix.count(1, 2), 1);          // one true 1 predicted as 2
//! assert_eq!(matrix.accuracy(), 0.5);
//! assert_eq!(matrix.class_accuracy(), vec![1.0, 0.5, 0.0]);
//! // "Is it a 1 or a 2?" is answered right for 3 of the 4 samples (the 1 taken for a 2
//! // counts as right).
//! assert_eq!(matrix.group_accuracy(&[1, 2]), 0.75);
//! ```

use std::fmt::Write as _;

pub use tapegrad_nn::metrics::argmax_rows;

/// Counts of (true class, predicted class) pairs: row = truth, column = prediction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    counts: Vec<Vec<usize>>,
}

impl ConfusionMatrix {
    /// Counts the pairs `(truth[i], predicted[i])`.
    ///
    /// # Panics
    ///
    /// If the slices have different lengths or a class is not below `num_classes`.
    pub fn new(truth: &[usize], predicted: &[usize], num_classes: usize) -> Self {
        assert_eq!(
            truth.len(),
            predicted.len(),
            "ConfusionMatrix::new: {} true labels but {} predictions",
            truth.len(),
            predicted.len()
        );
        let mut counts = vec![vec![0; num_classes]; num_classes];
        for (&t, &p) in truth.iter().zip(predicted) {
            assert!(
                t < num_classes && p < num_classes,
                "ConfusionMatrix::new: class {} is not below {num_classes}",
                t.max(p)
            );
            counts[t][p] += 1;
        }
        ConfusionMatrix { counts }
    }

    /// The number of classes.
    pub fn num_classes(&self) -> usize {
        self.counts.len()
    }

    /// How many samples of class `truth` were predicted as `predicted`.
    pub fn count(&self, truth: usize, predicted: usize) -> usize {
        self.counts[truth][predicted]
    }

    /// The number of samples.
    pub fn total(&self) -> usize {
        self.counts.iter().flatten().sum()
    }

    /// How many samples of each true class there are (the row sums).
    pub fn class_totals(&self) -> Vec<usize> {
        self.counts.iter().map(|row| row.iter().sum()).collect()
    }

    /// The fraction of samples predicted right (0 for no sample).
    pub fn accuracy(&self) -> f64 {
        let right: usize = (0..self.num_classes()).map(|c| self.counts[c][c]).sum();
        ratio(right, self.total())
    }

    /// For each class, the fraction of its samples predicted right (its recall; 0 for a
    /// class with no sample).
    pub fn class_accuracy(&self) -> Vec<f64> {
        self.counts
            .iter()
            .enumerate()
            .map(|(c, row)| ratio(row[c], row.iter().sum()))
            .collect()
    }

    /// The 2 × 2 matrix of the yes/no question "is it one of `group`?": class 1 is "yes"
    /// (in the group), class 0 "no". Mistakes inside the group, or outside it, vanish (a
    /// sandal taken for a sneaker is still a shoe).
    pub fn group_matrix(&self, group: &[usize]) -> ConfusionMatrix {
        let mut counts = vec![vec![0; 2]; 2];
        for (t, row) in self.counts.iter().enumerate() {
            for (p, &n) in row.iter().enumerate() {
                counts[usize::from(group.contains(&t))][usize::from(group.contains(&p))] += n;
            }
        }
        ConfusionMatrix { counts }
    }

    /// The accuracy of the yes/no question "is it one of `group`?" (of
    /// [`group_matrix`](Self::group_matrix)): a sample counts as right when its prediction
    /// is in `group` exactly when its true class is.
    pub fn group_accuracy(&self, group: &[usize]) -> f64 {
        self.group_matrix(group).accuracy()
    }

    /// The matrix as a text table, one row per true class, one column per predicted class,
    /// headed by `names` (keep them short: each column is as wide as the longest name).
    ///
    /// # Panics
    ///
    /// If there is not one name per class.
    pub fn to_table(&self, names: &[&str]) -> String {
        assert_eq!(
            names.len(),
            self.num_classes(),
            "ConfusionMatrix::to_table: one name per class"
        );
        let width = self
            .counts
            .iter()
            .flatten()
            .map(|n| n.to_string().len())
            .chain(names.iter().map(|s| s.chars().count()))
            .max()
            .unwrap_or(1);
        let mut table = format!("{:>width$} |", "");
        for name in names {
            let _ = write!(table, " {name:>width$}");
        }
        table.push('\n');
        let _ = writeln!(
            table,
            "{}",
            "-".repeat(width + 2 + (width + 1) * names.len())
        );
        for (name, row) in names.iter().zip(&self.counts) {
            let _ = write!(table, "{name:>width$} |");
            for n in row {
                let _ = write!(table, " {n:>width$}");
            }
            table.push('\n');
        }
        table
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn argmax_takes_the_first_of_ties_and_skips_nan() {
        let scores = array![[1.0_f64, 1.0, 0.0], [f64::NAN, 0.5, 2.0]].into_dyn();
        assert_eq!(argmax_rows(&scores), vec![0, 2]);
    }

    #[test]
    fn group_accuracy_ignores_mistakes_inside_a_group() {
        // Classes 1 and 2 are the group: 1 taken for 2 is right, 0 taken for 2 is wrong.
        let m = ConfusionMatrix::new(&[1, 0, 2, 0], &[2, 2, 2, 0], 3);
        assert_eq!(m.group_accuracy(&[1, 2]), 0.75);
        assert_eq!(m.accuracy(), 0.5);
        let yes_no = m.group_matrix(&[1, 2]);
        assert_eq!(yes_no.class_totals(), vec![2, 2]);
        assert_eq!((yes_no.count(0, 1), yes_no.count(1, 1)), (1, 2));
    }

    #[test]
    fn table_has_a_row_per_class() {
        let m = ConfusionMatrix::new(&[0, 1, 1], &[0, 1, 0], 2);
        let table = m.to_table(&["Sandal", "Sneaker"]);
        assert!(table.contains(" Sandal |       1       0\n"), "{table}");
        assert!(table.contains("Sneaker |       1       1\n"), "{table}");
        assert_eq!(m.class_totals(), vec![1, 2]);
    }
}
