//! Nothing here: the package's content is its bench targets (`ops.rs`, `tape.rs`, `mlp.rs`,
//! `fit_line.rs`, `compare/main.rs`, sharing `common/mod.rs`); see `README.md`.
