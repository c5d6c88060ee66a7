//! TensorBoard event files: a [`SummaryWriter`] of scalars, histograms, images, text and
//! hyper-parameters (PyTorch's names), read by `tensorboard --logdir DIR`; the
//! [`TensorBoard`](crate::callbacks::TensorBoard) callback writes one during
//! [`fit`](crate::model::Model::fit).
//!
//! An event file is a sequence of TFRecords (length, masked CRC-32C of the length,
//! payload, masked CRC-32C of the payload), each the protocol buffer of an [`proto::Event`]:
//! first the file version `brain.Event:2`, then one event per logged value, stamped with
//! its wall time and step.

mod histogram;
mod hparams;
mod image;
pub mod proto;
mod record;
mod writer;

pub use histogram::BUCKETS;
pub use hparams::HParamValue;
pub use image::{ImageLayout, Pixel};
pub use writer::SummaryWriter;

use crate::io::IoError;

/// What can go wrong while writing TensorBoard events.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum SummaryError {
    /// The log folder or the event file could not be created or written.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A histogram was asked for values none of which is finite.
    #[error("cannot log the histogram `{tag}`: it has no finite value")]
    NoFiniteValues {
        /// The histogram's tag.
        tag: String,
    },
    /// An image array cannot be encoded.
    #[error("cannot log the image `{tag}` of shape {shape:?}: {reason}")]
    InvalidImage {
        /// The image's tag.
        tag: String,
        /// The array's shape.
        shape: Vec<usize>,
        /// What is wrong with it.
        reason: String,
    },
}
