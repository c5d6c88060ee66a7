//! [`SummaryWriter`]: scalars, histograms, images, text and hyper-parameters into a
//! TensorBoard event file.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use ndarray::{ArrayBase, ArrayView3, Data, Dimension};
use prost::Message;
use tapegrad_autograd::Float;

use super::SummaryError;
use super::histogram::histogram;
use super::hparams::{HParamValue, hparams_summaries};
use super::image::{ImageLayout, Pixel, encode_image};
use super::proto::{
    DT_STRING, Event, EventKind, PluginData, Summary, SummaryMetadata, SummaryValue, TensorProto,
    TensorShapeDim, TensorShapeProto, TextPluginData, ValueKind,
};
use super::record::write_record;
use crate::io::IoError;

/// Writers opened by this process so far (part of every file name, so that two writers
/// opened in the same second never share a file).
static FILES_OPENED: AtomicU64 = AtomicU64::new(0);

/// Writes TensorBoard event files (PyTorch's `torch.utils.tensorboard.SummaryWriter`):
/// each `add_*` appends one event to `events.out.tfevents.<secs>.<hostname>.<pid>.<n>` in
/// the log folder, which `tensorboard --logdir` shows as a run named after the folder.
///
/// Events are buffered and written to the file by [`flush`](Self::flush), when the writer
/// is dropped (ignoring an error: call `flush` to see it), and by the first `add_*` after [`flush_secs`](Self::flush_secs) seconds
/// (120, PyTorch's default) since the last flush: call `flush` after each epoch so that a
/// running TensorBoard sees the points as they come (the
/// [`TensorBoard`](crate::callbacks::TensorBoard) callback does).
///
/// ```
/// use ndarray::{Array1, Array3};
/// use tapegrad_nn::tensorboard::{ImageLayout, SummaryWriter};
///
/// let dir = std::env::temp_dir().join(format!("tapegrad-writer-doc-{}", std::process::id()));
/// let mut writer = SummaryWriter::new(&dir)?;
/// for step in 0..3 {
///     writer.add_scalar("Loss/train", 1.0 / (step + 1) as f64, step)?;
/// }
/// writer.add_histogram("weights", &Array1::<f32>::linspace(-1.0, 1.0, 100), 0)?;
/// writer.add_image("digit", Array3::<f32>::zeros((1, 28, 28)).view(), ImageLayout::Chw, 0)?;
/// writer.add_text("notes", "**bold** markdown", 0)?;
/// writer.add_hparams(&[("lr", 1e-3.into()), ("optimizer", "adam".into())], &[("loss", 0.25)])?;
/// writer.flush()?;
/// assert!(writer.path().file_name().unwrap().to_str().unwrap().starts_with("events.out.tfevents."));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), tapegrad_nn::tensorboard::SummaryError>(())
/// ```
#[derive(Debug)]
pub struct SummaryWriter {
    log_dir: PathBuf,
    path: PathBuf,
    file: BufWriter<File>,
    flush_every: Duration,
    last_flush: Instant,
}

impl SummaryWriter {
    /// Opens a new event file in `log_dir` (created if needed) and writes its first record,
    /// the file version `brain.Event:2`.
    ///
    /// # Errors
    ///
    /// [`SummaryError::Io`] if the folder or the file cannot be created or written.
    pub fn new(log_dir: impl AsRef<Path>) -> Result<Self, SummaryError> {
        let log_dir = log_dir.as_ref().to_path_buf();
        fs::create_dir_all(&log_dir).map_err(|source| IoError::Io {
            action: "create the folder",
            path: log_dir.clone(),
            source,
        })?;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let name = format!(
            "events.out.tfevents.{:010}.{}.{}.{}",
            now.as_secs(),
            hostname(),
            std::process::id(),
            FILES_OPENED.fetch_add(1, Ordering::Relaxed)
        );
        let path = log_dir.join(name);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| IoError::Io {
                action: "create",
                path: path.clone(),
                source,
            })?;
        let mut writer = SummaryWriter {
            log_dir,
            path,
            file: BufWriter::new(file),
            flush_every: Duration::from_secs(120),
            last_flush: Instant::now(),
        };
        writer.write_event(0, EventKind::FileVersion("brain.Event:2".to_string()))?;
        writer.flush()?;
        Ok(writer)
    }

    /// Flushes at the first event written `secs` seconds or more after the last flush
    /// (default 120; 0 flushes after every event).
    pub fn flush_secs(mut self, secs: u64) -> Self {
        self.flush_every = Duration::from_secs(secs);
        self
    }

    /// The log folder (the run).
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logs the scalar `value` of the series `tag` at `step` (stored as `f32`, as
    /// TensorBoard's `simple_value`).
    ///
    /// # Errors
    ///
    /// [`SummaryError::Io`] if a flush fails.
    pub fn add_scalar(&mut self, tag: &str, value: f64, step: usize) -> Result<(), SummaryError> {
        self.write_value(tag, None, ValueKind::SimpleValue(value as f32), step)
    }

    /// Logs the histogram of `values` (any shape) at `step`: 30 equal-width buckets from
    /// the smallest to the largest finite value. NaN and infinite values are left out.
    ///
    /// # Errors
    ///
    /// [`SummaryError::NoFiniteValues`] if no value is finite (nothing is written);
    /// [`SummaryError::Io`] if a flush fails.
    pub fn add_histogram<S, D>(
        &mut self,
        tag: &str,
        values: &ArrayBase<S, D>,
        step: usize,
    ) -> Result<(), SummaryError>
    where
        S: Data,
        S::Elem: Float,
        D: Dimension,
    {
        // A contiguous array is read as a slice (a plain loop), any other through ndarray's
        // iterator.
        let histo = match values.as_slice_memory_order() {
            Some(slice) => histogram(slice.iter().map(|&v| Float::to_f64(v))),
            None => histogram(values.iter().map(|&v| Float::to_f64(v))),
        }
        .ok_or_else(|| SummaryError::NoFiniteValues {
            tag: tag.to_string(),
        })?;
        self.write_value(tag, None, ValueKind::Histo(histo), step)
    }

    /// Logs the image `image` at `step`, PNG-encoded: `(channels, height, width)` or
    /// `(height, width, channels)` as `layout` says, with 1 (grayscale), 3 (RGB) or 4
    /// (RGBA) channels; bytes as they are, floats in `[0, 1]` (see [`Pixel`]).
    ///
    /// # Errors
    ///
    /// [`SummaryError::InvalidImage`] for another number of channels or an empty image
    /// (nothing is written); [`SummaryError::Io`] if a flush fails.
    pub fn add_image<P: Pixel>(
        &mut self,
        tag: &str,
        image: ArrayView3<'_, P>,
        layout: ImageLayout,
        step: usize,
    ) -> Result<(), SummaryError> {
        let image = encode_image(tag, image, layout)?;
        self.write_value(tag, None, ValueKind::Image(image), step)
    }

    /// Logs `text` (Markdown) at `step` under the tag `<tag>/text_summary`, for the text
    /// plugin, as PyTorch's `add_text`.
    ///
    /// # Errors
    ///
    /// [`SummaryError::Io`] if a flush fails.
    pub fn add_text(&mut self, tag: &str, text: &str, step: usize) -> Result<(), SummaryError> {
        let metadata = SummaryMetadata {
            plugin_data: Some(PluginData {
                plugin_name: "text".to_string(),
                content: TextPluginData { version: 0 }.encode_to_vec(),
            }),
        };
        let tensor = TensorProto {
            dtype: DT_STRING,
            tensor_shape: Some(TensorShapeProto {
                dim: vec![TensorShapeDim { size: 1 }],
            }),
            string_val: vec![text.as_bytes().to_vec()],
        };
        let tag = format!("{tag}/text_summary");
        self.write_value(&tag, Some(metadata), ValueKind::Tensor(tensor), step)
    }

    /// Logs the hyper-parameters of a run and its final metrics for the HParams plugin, as
    /// PyTorch's `add_hparams`: into a run of its own, the folder `<log_dir>/<secs>`
    /// (seconds since the Unix epoch, with a fraction) that it returns, an event file with
    /// the experiment (the names and types of `hparams`, the names of `metrics`), the
    /// session's start (the values of `hparams`) and end, and each metric as a scalar at
    /// step 0.
    ///
    /// # Errors
    ///
    /// [`SummaryError::Io`] if the folder or its event file cannot be written.
    pub fn add_hparams(
        &mut self,
        hparams: &[(&str, HParamValue)],
        metrics: &[(&str, f64)],
    ) -> Result<PathBuf, SummaryError> {
        let now = wall_time();
        let mut run = SummaryWriter::new(self.log_dir.join(format!("{now:.6}")))?;
        let names: Vec<&str> = metrics.iter().map(|(name, _)| *name).collect();
        for summary in hparams_summaries(hparams, &names, now) {
            run.write_event(0, EventKind::Summary(summary))?;
        }
        for (name, value) in metrics {
            run.add_scalar(name, *value, 0)?;
        }
        run.flush()?;
        Ok(run.log_dir)
    }

    /// Writes the buffered events to the file.
    ///
    /// # Errors
    ///
    /// [`SummaryError::Io`] if writing fails.
    pub fn flush(&mut self) -> Result<(), SummaryError> {
        self.last_flush = Instant::now();
        self.file.flush().map_err(|source| self.io_error(source))
    }

    /// Appends one summary value as an event.
    fn write_value(
        &mut self,
        tag: &str,
        metadata: Option<SummaryMetadata>,
        value: ValueKind,
        step: usize,
    ) -> Result<(), SummaryError> {
        let summary = Summary {
            value: vec![SummaryValue {
                tag: tag.to_string(),
                metadata,
                value: Some(value),
            }],
        };
        self.write_event(step, EventKind::Summary(summary))?;
        if self.last_flush.elapsed() >= self.flush_every {
            self.flush()?;
        }
        Ok(())
    }

    /// Appends one event at `step`, stamped with the wall time.
    fn write_event(&mut self, step: usize, what: EventKind) -> Result<(), SummaryError> {
        let event = Event {
            wall_time: wall_time(),
            step: i64::try_from(step).unwrap_or(i64::MAX),
            what: Some(what),
        };
        write_record(&mut self.file, &event.encode_to_vec()).map_err(|source| self.io_error(source))
    }

    fn io_error(&self, source: std::io::Error) -> SummaryError {
        IoError::Io {
            action: "write",
            path: self.path.clone(),
            source,
        }
        .into()
    }
}

/// Seconds since the Unix epoch.
fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// The machine's name, as file names may hold it (`localhost` when unknown).
fn hostname() -> String {
    let name = fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if name.is_empty() {
        "localhost".to_string()
    } else {
        name
    }
}
