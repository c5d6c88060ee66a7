//! TensorBoard event files and the logging callbacks: a reader that checks the framing of
//! every record (with a CRC-32C of its own, bit by bit, independent of the writer's) and
//! decodes every event; values read back equal; `fit` with the callbacks writes the
//! expected series, steps and rows, also across a resumed run.
//!
//! | file | what |
//! |---|---|
//! | `writer.rs` | `SummaryWriter`: scalars, histograms, images, text, hparams read back |
//! | `callback.rs` | the `TensorBoard` callback in `fit` |
//! | `csv_logger.rs` | `CsvLogger`: rows, append, a resumed run |

mod callback;
mod csv_logger;
mod writer;

use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use prost::Message;
use tapegrad_autograd::Float;
use tapegrad_nn::callbacks::{Callback, CallbackError, Control, EpochLogs, TrainingState};
use tapegrad_nn::tensorboard::proto::{Event, EventKind, Summary, SummaryValue, ValueKind};

/// A fresh scratch folder for one test.
fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tapegrad-tb-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Fails at the end of epoch `at` while `armed` (a run killed there, after the callbacks
/// before it ran and before that epoch's backup).
struct FailAt {
    at: usize,
    armed: Rc<Cell<bool>>,
}

impl<T: Float> Callback<T> for FailAt {
    fn name(&self) -> &'static str {
        "FailAt"
    }
    fn on_epoch_end(
        &mut self,
        logs: &EpochLogs<'_>,
        _state: &mut TrainingState<'_, T>,
    ) -> Result<Control, CallbackError> {
        if self.armed.get() && logs.epoch == self.at {
            return Err(CallbackError::Custom("killed".into()));
        }
        Ok(Control::Continue)
    }
}

/// CRC-32C (Castagnoli: reflected polynomial 0x82F63B78), one bit at a time.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// TFRecord's masked CRC: rotated right by 15 bits, plus 0xa282ead8.
fn masked_crc32c(bytes: &[u8]) -> u32 {
    crc32c(bytes).rotate_right(15).wrapping_add(0xa282_ead8)
}

/// The payloads of the records of `bytes`, or what is wrong with the framing.
fn read_records(bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut records = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let at = bytes.len() - rest.len();
        if rest.len() < 12 {
            return Err(format!("record at byte {at}: truncated header"));
        }
        let (length, crc) = (
            &rest[..8],
            u32::from_le_bytes(rest[8..12].try_into().unwrap()),
        );
        if crc != masked_crc32c(length) {
            return Err(format!("record at byte {at}: bad length CRC"));
        }
        let n = u64::from_le_bytes(length.try_into().unwrap()) as usize;
        if rest.len() < 12 + n + 4 {
            return Err(format!("record at byte {at}: truncated payload"));
        }
        let payload = &rest[12..12 + n];
        let crc = u32::from_le_bytes(rest[12 + n..16 + n].try_into().unwrap());
        if crc != masked_crc32c(payload) {
            return Err(format!("record at byte {at}: bad payload CRC"));
        }
        records.push(payload);
        rest = &rest[16 + n..];
    }
    Ok(records)
}

/// Every event of the event file `path`: each record's CRCs checked and its payload
/// decoded; the first one is the file version.
fn read_events(path: &Path) -> Vec<Event> {
    let bytes = fs::read(path).unwrap();
    let records = read_records(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let events: Vec<Event> = records
        .iter()
        .map(|r| Event::decode(*r).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect();
    assert_eq!(
        events[0].what,
        Some(EventKind::FileVersion("brain.Event:2".to_string())),
        "{}",
        path.display()
    );
    events
}

/// The event files of the run folder `dir`, oldest first (by the wall time of their
/// first event).
fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<(f64, PathBuf)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.to_string_lossy().contains("tfevents"))
        .map(|p| (read_events(&p)[0].wall_time, p))
        .collect();
    files.sort_by(|a, b| a.0.total_cmp(&b.0));
    files.into_iter().map(|(_, p)| p).collect()
}

/// The summary values of every event of every file of the run `dir`, with their steps.
fn run_values(dir: &Path) -> Vec<(i64, SummaryValue)> {
    event_files(dir)
        .iter()
        .flat_map(|f| read_events(f))
        .filter_map(|e| match e.what {
            Some(EventKind::Summary(Summary { value })) => Some((e.step, value)),
            _ => None,
        })
        .flat_map(|(step, values)| values.into_iter().map(move |v| (step, v)))
        .collect()
}

/// The `(step, value)` points of the scalar series `tag` of the run `dir`.
fn scalars(dir: &Path, tag: &str) -> Vec<(i64, f32)> {
    run_values(dir)
        .into_iter()
        .filter(|(_, v)| v.tag == tag)
        .map(|(step, v)| match v.value {
            Some(ValueKind::SimpleValue(x)) => (step, x),
            other => panic!("{tag} is not a scalar: {other:?}"),
        })
        .collect()
}

#[test]
fn the_reader_checks_the_crc32c_check_value_and_rejects_a_flipped_byte() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    let dir = scratch_dir("flipped");
    let mut writer = tapegrad_nn::tensorboard::SummaryWriter::new(&dir).unwrap();
    writer.add_scalar("x", 1.0, 0).unwrap();
    writer.flush().unwrap();
    let mut bytes = fs::read(writer.path()).unwrap();
    assert_eq!(read_records(&bytes).unwrap().len(), 2);
    for at in [3, 10, 20, bytes.len() - 1] {
        bytes[at] ^= 0x10;
        assert!(
            read_records(&bytes).is_err(),
            "flipped byte {at} goes unnoticed"
        );
        bytes[at] ^= 0x10;
    }
    assert!(read_records(&bytes[..bytes.len() - 2]).is_err());
}
