//! The file of a [`TrainingSnapshot`]: safetensors, the tensors under `param/`, `buffer/`,
//! `optimizer/` and `callback/<i>/`, everything else as JSON in the metadata (numbers as
//! their `f64` bits). Reading checks every field and every name; nothing panics.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};
use tapegrad_autograd::Float;

use super::{EpochProgress, SnapshotError, TrainingSnapshot, WalkPosition};
use crate::callbacks::CallbackState;
use crate::history::History;
use crate::io::{dtype_of, read_tensors_and_metadata, tensors_to_bytes};
use crate::metrics::MetricTotal;

/// The metadata key of a snapshot's description.
pub(crate) const KEY: &str = "tapegrad.snapshot";

/// The format version written and read.
const VERSION: u64 = 1;

/// The JSON description of a snapshot (everything but its tensors).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Description {
    version: u64,
    dtype: String,
    optimizer: String,
    /// The learning rate's bits.
    lr: u64,
    schedule_steps: Option<u64>,
    batches: Option<Walk>,
    epoch: u64,
    batch: u64,
    ranks: u64,
    generators: BTreeMap<String, Vec<u64>>,
    history: Option<HistoryRows>,
    progress: Option<Progress>,
    callbacks: Vec<SavedCallback>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Walk {
    rows: u64,
    batch_size: u64,
    seed: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryRows {
    names: Vec<String>,
    /// One row per epoch, each value's bits.
    rows: Vec<Vec<u64>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Progress {
    /// The bits of the loss summed over the samples seen.
    loss_sum: u64,
    seen: u64,
    /// Each metric's (sum bits, count).
    metrics: Vec<(u64, u64)>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedCallback {
    name: String,
    /// The callback's numbers (bits), when it has state.
    state: Option<BTreeMap<String, Vec<u64>>>,
}

fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

fn floats(values: &[u64]) -> Vec<f64> {
    values.iter().map(|&v| f64::from_bits(v)).collect()
}

impl<T: Float> TrainingSnapshot<T> {
    /// The bytes of the snapshot's file (what [`save`](Self::save) writes).
    ///
    /// # Errors
    ///
    /// [`SnapshotError::Io`] if two tensors share a name or the element type has no
    /// safetensors equivalent.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SnapshotError> {
        let history = self.history.as_ref().map(|h| HistoryRows {
            names: h.names().map(str::to_string).collect(),
            rows: (0..h.epochs())
                .map(|e| {
                    h.names()
                        .map(|n| h.get(n).map_or(0, |column| column[e].to_bits()))
                        .collect()
                })
                .collect(),
        });
        let description = Description {
            version: VERSION,
            dtype: T::DTYPE.to_string(),
            optimizer: self.optimizer.clone(),
            lr: self.lr.to_bits(),
            schedule_steps: self.schedule_steps.map(|s| s as u64),
            batches: self.batches.as_ref().map(|w| Walk {
                rows: w.rows as u64,
                batch_size: w.batch_size as u64,
                seed: w.seed,
            }),
            epoch: self.epoch as u64,
            batch: self.batch as u64,
            ranks: self.ranks as u64,
            generators: self.generators.clone(),
            history,
            progress: self.progress.as_ref().map(|p| Progress {
                loss_sum: p.loss_sum.to_bits(),
                seen: p.seen as u64,
                metrics: p
                    .metrics
                    .iter()
                    .map(|m| (m.sum.to_bits(), m.count as u64))
                    .collect(),
            }),
            callbacks: self
                .callbacks
                .iter()
                .map(|(name, state)| SavedCallback {
                    name: name.clone(),
                    state: state.as_ref().map(|s| {
                        s.all_numbers()
                            .iter()
                            .map(|(k, v)| (k.clone(), bits(v)))
                            .collect()
                    }),
                })
                .collect(),
        };
        let json = serde_json::to_string(&description).map_err(|e| SnapshotError::Corrupt {
            path: Default::default(),
            reason: format!("cannot describe the snapshot: {e}"),
        })?;
        let mut names = Vec::new();
        let groups = [
            ("param", &self.params),
            ("buffer", &self.buffers),
            ("optimizer", &self.optimizer_state),
        ];
        for (prefix, tensors) in groups {
            for (name, value) in tensors {
                names.push((format!("{prefix}/{name}"), value));
            }
        }
        for (i, (_, state)) in self.callbacks.iter().enumerate() {
            for (key, value) in state.iter().flat_map(|s| s.all_tensors()) {
                names.push((format!("callback/{i}/{key}"), value));
            }
        }
        let entries = names.iter().map(|(name, value)| (name.as_str(), *value));
        let metadata = HashMap::from([(KEY.to_string(), json)]);
        Ok(tensors_to_bytes(dtype_of::<T>()?, entries, metadata)?)
    }

    /// Reads a snapshot from the bytes of its file, validating all of it; `path` is used in
    /// error messages only.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load), but no read error.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, SnapshotError> {
        let corrupt = |reason: String| SnapshotError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        // The description first: a foreign file is `NotASnapshot` whatever its tensors.
        let (tensors, metadata) = match read_tensors_and_metadata::<T>(path, bytes) {
            Ok(read) => read,
            Err(crate::io::IoError::DtypeMismatch { found, .. }) => {
                return Err(SnapshotError::Dtype {
                    expected: T::DTYPE,
                    found,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let json = metadata.get(KEY).ok_or(SnapshotError::NotASnapshot {
            path: path.to_path_buf(),
            key: KEY,
        })?;
        let version = serde_json::from_str::<serde_json::Value>(json)
            .ok()
            .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64));
        if let Some(found) = version.filter(|&v| v != VERSION) {
            return Err(SnapshotError::Version {
                path: path.to_path_buf(),
                expected: VERSION,
                found,
            });
        }
        let d: Description = serde_json::from_str(json)
            .map_err(|e| corrupt(format!("its description is invalid: {e}")))?;
        if d.dtype != T::DTYPE {
            return Err(SnapshotError::Dtype {
                expected: T::DTYPE,
                found: d.dtype,
            });
        }
        let size = |what: &str, v: u64| {
            usize::try_from(v).map_err(|_| corrupt(format!("{what} {v} does not fit in usize")))
        };
        let ranks = size("ranks", d.ranks)?;
        if ranks == 0 {
            return Err(corrupt("0 ranks".to_string()));
        }
        if let Some((name, states)) = d.generators.iter().find(|(_, s)| s.len() != ranks) {
            return Err(corrupt(format!(
                "generator `{name}` has {} states for {ranks} ranks",
                states.len()
            )));
        }
        let lr = f64::from_bits(d.lr);
        let history = match d.history {
            None => None,
            Some(h) => Some(read_history(h).map_err(corrupt)?),
        };
        let batches = match d.batches {
            None => None,
            Some(w) => {
                let walk = WalkPosition {
                    rows: size("rows", w.rows)?,
                    batch_size: size("batch size", w.batch_size)?,
                    seed: w.seed,
                };
                if walk.batch_size == 0 {
                    return Err(corrupt("a batch size of 0".to_string()));
                }
                Some(walk)
            }
        };
        let progress = match d.progress {
            None => None,
            Some(p) => Some(EpochProgress {
                loss_sum: f64::from_bits(p.loss_sum),
                seen: size("seen", p.seen)?,
                metrics: p
                    .metrics
                    .iter()
                    .map(|&(sum, count)| {
                        Ok(MetricTotal {
                            sum: f64::from_bits(sum),
                            count: size("metric count", count)?,
                        })
                    })
                    .collect::<Result<_, SnapshotError>>()?,
            }),
        };
        let mut callbacks: Vec<(String, Option<CallbackState<T>>)> = d
            .callbacks
            .into_iter()
            .map(|c| {
                let state = c.state.map(|numbers| {
                    numbers
                        .into_iter()
                        .fold(CallbackState::new(), |s, (k, v)| s.numbers(k, floats(&v)))
                });
                (c.name, state)
            })
            .collect();

        let mut snapshot = TrainingSnapshot {
            params: BTreeMap::new(),
            buffers: BTreeMap::new(),
            generators: d.generators,
            ranks,
            optimizer: d.optimizer,
            lr,
            optimizer_state: BTreeMap::new(),
            schedule_steps: d
                .schedule_steps
                .map(|s| size("schedule steps", s))
                .transpose()?,
            batches,
            epoch: size("epoch", d.epoch)?,
            batch: size("batch", d.batch)?,
            history,
            progress,
            callbacks: Vec::new(),
        };
        for (name, value) in tensors {
            let unknown = || corrupt(format!("it holds tensor `{name}`, which no part names"));
            let (group, rest) = name.split_once('/').ok_or_else(unknown)?;
            let target = match group {
                "param" => &mut snapshot.params,
                "buffer" => &mut snapshot.buffers,
                "optimizer" => &mut snapshot.optimizer_state,
                "callback" => {
                    let (index, key) = rest.split_once('/').ok_or_else(unknown)?;
                    let state = index
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| callbacks.get_mut(i))
                        .and_then(|(_, state)| state.as_mut())
                        .ok_or_else(unknown)?;
                    state.insert_tensor(key, value);
                    continue;
                }
                _ => return Err(unknown()),
            };
            target.insert(rest.to_string(), value);
        }
        snapshot.callbacks = callbacks;
        Ok(snapshot)
    }
}

/// The history of its JSON rows, or why they are invalid.
fn read_history(h: HistoryRows) -> Result<History, String> {
    let mut names = h.names.clone();
    names.sort();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err("the history names a column twice".to_string());
    }
    let refs: Vec<&str> = h.names.iter().map(String::as_str).collect();
    let mut history = History::new(&refs);
    for (e, row) in h.rows.iter().enumerate() {
        if row.len() != refs.len() {
            return Err(format!(
                "history row {e} has {} values for {} columns",
                row.len(),
                refs.len()
            ));
        }
        history.push_epoch(&floats(row));
    }
    Ok(history)
}
