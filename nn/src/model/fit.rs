//! [`Model::fit`]: the checks and preparation before training, then the epochs.

use std::rc::Rc;

use ndarray::{ArrayBase, ArrayViewD, Axis, Data, Dimension};
use tapegrad_autograd::Float;

use super::backup::{BackupPlan, find_backup, read_backup};
use super::dist::agree;
use super::metric::MetricAcc;
use super::prepare::Prepared;
use super::train::Training;
use super::{DataRole, FitError, FitOptions, Model, check_finite, float_fns};
use crate::callbacks::TrainingState;
use crate::communicator::{CommError, Communicator, broadcast_buffers, broadcast_params};
use crate::history::History;
use crate::module::Module;

impl<T: Float, M: Module<T>> Model<T, M> {
    /// Trains the model on inputs `x` and targets `y` (samples along axis 0), and returns
    /// the loss and metrics of every epoch.
    ///
    /// Builds the model on first use (from the shape of `x` and `options.seed`). Each epoch
    /// visits the training samples in batches of `options.batch_size` (shuffled if
    /// `options.shuffle`); each batch is one forward pass on a fresh tape, one backward
    /// sweep and one optimizer step. Then the validation data, if any, is evaluated, the
    /// epoch is recorded in the [`History`], and the callbacks run.
    ///
    /// With a [communicator](FitOptions::communicator) of several processes (MPI ranks),
    /// training is data-parallel: see the option.
    ///
    /// When a callback stops training, `fit` returns `Ok` and
    /// [`History::stop_reason`] says why and when.
    ///
    /// # Errors
    ///
    /// Checked before anything is trained (the model may have been built, nothing else
    /// changes): [`FitError::NotCompiled`], [`FitError::InvalidBatchSize`],
    /// [`FitError::InvalidValidationSplit`], [`FitError::EmptyDataset`],
    /// [`FitError::LengthMismatch`], [`FitError::InputShape`],
    /// [`FitError::InvalidInputShape`], [`FitError::NoTrainableParams`] (unless
    /// [`FitOptions::allow_no_trainable`]), [`FitError::TargetShape`],
    /// [`FitError::InvalidInput`], [`FitError::InvalidLabel`], [`FitError::InvalidTarget`],
    /// [`FitError::MetricShape`], [`FitError::NonFinite`] (a NaN or infinity in `x`, `y` or
    /// the validation data, unless [`FitOptions::check_finite`] is off). During training:
    /// [`FitError::LossNotScalar`], [`FitError::Optimizer`], [`FitError::Callback`]. With a
    /// [communicator](FitOptions::communicator) of several ranks, an error on one rank is
    /// returned on every rank: that rank returns its own, the others
    /// [`FitError::RankFailed`]; a failed collective is [`FitError::Communication`].
    pub fn fit<SX, SY, DX, DY>(
        &mut self,
        x: &ArrayBase<SX, DX>,
        y: &ArrayBase<SY, DY>,
        options: FitOptions<T>,
    ) -> Result<History, FitError>
    where
        SX: Data<Elem = T>,
        SY: Data<Elem = T>,
        DX: Dimension,
        DY: Dimension,
    {
        T::call::<float_fns::Fit>((self, x.view().into_dyn(), y.view().into_dyn(), options))
    }
}

impl<T: Float> Model<T, dyn Module<T> + '_> {
    /// [`Model::fit`] of views.
    pub(super) fn fit_views(
        &mut self,
        x: ArrayViewD<'_, T>,
        y: ArrayViewD<'_, T>,
        mut options: FitOptions<T>,
    ) -> Result<History, FitError> {
        if self.compiled.is_none() {
            return Err(FitError::NotCompiled);
        }
        if options.batch_size == 0 {
            return Err(FitError::InvalidBatchSize);
        }
        let split = options.validation_split;
        if !(0.0..1.0).contains(&split) {
            return Err(FitError::InvalidValidationSplit { value: split });
        }
        let validation_data = options.validation_data.take();
        let comm = Rc::clone(&options.communicator);
        let comm = &*comm;
        let setup = self
            .prepare_fit(
                x.view().into_dyn(),
                y.view().into_dyn(),
                validation_data.as_ref(),
                split,
                options.seed,
            )
            .and_then(|(train, validation)| {
                if !options.allow_no_trainable && self.module.params().is_empty() {
                    return Err(FitError::NoTrainableParams);
                }
                if options.check_finite {
                    check_finite(&x.view().into_dyn(), DataRole::Training, "x")?;
                    check_finite(&y.view().into_dyn(), DataRole::Training, "y")?;
                    if let Some((vx, vy)) = &validation_data {
                        check_finite(&vx.view(), DataRole::Validation, "x")?;
                        check_finite(&vy.view(), DataRole::Validation, "y")?;
                    }
                }
                let train_metrics = self.resolve_metrics(&train.target_shape)?;
                let val_metrics = match &validation {
                    Some(v) => self.resolve_metrics(&v.target_shape)?,
                    None => Vec::new(),
                };
                Ok((train, validation, train_metrics, val_metrics))
            });
        let setup = same_rows_as_root(comm, setup)?;
        let (train, validation, train_metrics, val_metrics) = agree(comm, setup)?;

        let mut names = vec!["loss".to_string()];
        names.extend(train_metrics.iter().map(|m| m.name.to_string()));
        if validation.is_some() {
            names.push("val_loss".to_string());
            names.extend(val_metrics.iter().map(|m| format!("val_{}", m.name)));
        }
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut history = History::new(&name_refs);
        if options.epochs == 0 {
            return Ok(history);
        }

        let Model {
            module, compiled, ..
        } = self;
        let compiled = compiled.as_mut().ok_or(FitError::NotCompiled)?;
        // Every replica starts from rank 0's weights and buffers.
        broadcast_params(comm, &mut module.params_mut())?;
        broadcast_buffers(comm, &module.buffers())?;
        let mut callbacks = std::mem::take(&mut options.callbacks);
        let mut begun = Ok(());
        for cb in callbacks.iter_mut() {
            if cb.root_only() && !comm.is_root() {
                continue;
            }
            let mut state = TrainingState::new(module, &mut *compiled.optimizer);
            if let Err(source) = cb.on_train_begin(&names, &mut state) {
                begun = Err(FitError::Callback {
                    callback: cb.name(),
                    epoch: None,
                    source: Box::new(source),
                });
                break;
            }
        }
        agree(comm, begun)?;
        let backup = find_backup(&mut callbacks);
        let resume = match &backup {
            Some(backup) => read_backup(comm, backup)?,
            None => None,
        };

        module.set_training(true);
        let result = Training {
            module: &mut *module,
            compiled: &mut *compiled,
            callbacks: &mut callbacks,
            train: &train,
            validation: validation.as_ref(),
            train_metrics,
            val_metrics,
            names: &names,
            options: &options,
            comm,
            backup: backup.map(|backup| BackupPlan {
                backup,
                walk: None,
                history: history.clone(),
            }),
            resume,
        }
        .run(&mut history);
        module.set_training(false);
        result?;

        let mut ended = Ok(());
        for cb in callbacks.iter_mut() {
            if cb.root_only() && !comm.is_root() {
                continue;
            }
            let mut state = TrainingState::new(module, &mut *compiled.optimizer);
            if let Err(source) = cb.on_train_end(&mut state) {
                ended = Err(FitError::Callback {
                    callback: cb.name(),
                    epoch: None,
                    source: Box::new(source),
                });
                break;
            }
        }
        agree(comm, ended)?;
        Ok(history)
    }
}

/// What `fit` checks and prepares before training: the training and validation data and
/// their metrics.
type Setup<'a, T> = (
    Prepared<'a, T>,
    Option<Prepared<'a, T>>,
    Vec<MetricAcc>,
    Vec<MetricAcc>,
);

/// With several ranks: `setup`, or an error when its numbers of training and validation
/// samples differ from rank 0's (every rank must step through the same batches). One
/// broadcast; nothing on one process. The outer error is a failed broadcast.
fn same_rows_as_root<'a, T: Float>(
    comm: &dyn Communicator,
    setup: Result<Setup<'a, T>, FitError>,
) -> Result<Result<Setup<'a, T>, FitError>, FitError> {
    if comm.size() == 1 {
        return Ok(setup);
    }
    let rows = |p: &Prepared<'_, T>| p.x.len_of(Axis(0)) as f64;
    let mine = match &setup {
        Ok((train, validation, ..)) => vec![rows(train), validation.as_ref().map_or(0.0, rows)],
        Err(_) => vec![0.0, 0.0],
    };
    let mut root = mine.clone();
    comm.broadcast_f64(&mut root, 0)?;
    Ok(match setup {
        Ok(_) if mine != root => Err(CommError::Mismatch {
            operation: "fit",
            detail: format!(
                "rank {} has {} training and {} validation samples, but rank 0 has {} and {} \
                 (every rank must be given the same data)",
                comm.rank(),
                mine[0],
                mine[1],
                root[0],
                root[1]
            ),
        }
        .into()),
        setup => setup,
    })
}
