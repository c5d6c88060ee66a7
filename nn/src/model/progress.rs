//! The progress output of `fit`: a bar per epoch on a terminal, or a line per epoch.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress output of `fit`: nothing at verbosity 0 (or 1 off a terminal), a progress bar
/// per epoch at 1, a line per epoch at 2.
pub(super) struct Reporter {
    verbose: u8,
    epochs: usize,
    batches: usize,
    bar: Option<ProgressBar>,
    started: Option<Instant>,
}

impl Reporter {
    pub(super) fn new(verbose: u8, epochs: usize, batches: usize) -> Self {
        let verbose = match verbose {
            0 => 0,
            1 if std::io::stderr().is_terminal() => 1,
            1 => 0,
            _ => 2,
        };
        Reporter {
            verbose,
            epochs,
            batches,
            bar: None,
            started: None,
        }
    }

    #[inline]
    pub(super) fn epoch_begin(&mut self, epoch: usize) {
        if self.verbose == 0 {
            return;
        }
        self.started = Some(Instant::now());
        if self.verbose == 1 {
            let bar = ProgressBar::with_draw_target(
                Some(self.batches as u64),
                ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix} {pos}/{len} [{bar:30}] {elapsed} (ETA {eta}) {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(format!("Epoch {}/{}", epoch + 1, self.epochs));
            self.bar = Some(bar);
        }
    }

    #[inline]
    pub(super) fn batch_end(&mut self, batch: usize, running_loss: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(batch as u64 + 1);
            bar.set_message(format!("loss: {running_loss:.4}"));
        }
    }

    #[inline]
    pub(super) fn epoch_end(&mut self, epoch: usize, names: &[String], values: &[f64]) {
        if self.verbose == 0 {
            return;
        }
        let mut line = String::new();
        for (i, (name, value)) in names.iter().zip(values).enumerate() {
            if i > 0 {
                line.push_str(" - ");
            }
            line.push_str(&format!("{name}: {value:.4}"));
        }
        if let Some(bar) = self.bar.take() {
            // Leave the finished bar on its own line, under which the next epoch's goes.
            bar.finish_with_message(line);
            eprintln!();
        } else {
            let elapsed = self.started.map(|s| s.elapsed()).unwrap_or_default();
            eprintln!(
                "Epoch {}/{} - {:.3}s - {line}",
                epoch + 1,
                self.epochs,
                elapsed.as_secs_f64()
            );
        }
    }
}
