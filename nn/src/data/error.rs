//! [`DataError`]: what can go wrong while locating or reading a dataset file.

use std::io;
use std::path::PathBuf;

#[cfg(doc)]
use super::{
    IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, MAX_CSV_BYTES, MAX_CSV_LINE_BYTES, MAX_GZIP_RATIO,
    MAX_IDX_BYTES, MAX_TRAILING_BYTES_COUNTED, find_idx_file,
};

/// Everything that can go wrong while locating or reading a dataset file, or encoding text.
///
/// Every variant names the file (or folder, or word) involved, so the message alone says
/// what to fix.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The file starts with the gzip magic bytes but its compressed stream is corrupt or cut
    /// short, or non-gzip bytes follow the last gzip member.
    #[error(
        "cannot decompress gzip file {path} (corrupt, truncated or trailing garbage): {source}"
    )]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: io::Error,
    },

    /// The IDX magic number is not the one expected for this kind of file.
    #[error("wrong magic number {found:#010x} in {path}, expected {expected} ({kind})")]
    WrongMagic {
        /// The file.
        path: PathBuf,
        /// The big-endian `u32` found at the start of the (decompressed) file.
        found: u32,
        /// The expected magic number ([`IDX_IMAGES_MAGIC`] or [`IDX_LABELS_MAGIC`]).
        expected: u32,
        /// What the file should have been, e.g. `"IDX images"`.
        kind: &'static str,
    },

    /// The file ends before its IDX header does.
    #[error("truncated header in {path}: an {kind} header has {expected} bytes, found {found}")]
    TruncatedHeader {
        /// The file.
        path: PathBuf,
        /// What the file should have been, e.g. `"IDX images"`.
        kind: &'static str,
        /// Header length in bytes.
        expected: usize,
        /// Bytes actually present.
        found: usize,
    },

    /// The header's dimensions are unusable (zero-sized images, or a size that overflows).
    #[error("invalid header dimensions in {path}: {reason}")]
    BadDimensions {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// The file holds fewer data bytes than its header promises.
    #[error("truncated: header promises {expected} {what} bytes, found {found} in {path}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// `"pixel"` or `"label"`.
        what: &'static str,
        /// Data bytes the header promises.
        expected: u64,
        /// Data bytes present.
        found: u64,
    },

    /// The IDX header declares a body larger than [`MAX_IDX_BYTES`]; nothing was read or
    /// allocated for it.
    #[error(
        "too large: the header of {path} declares {declared} {what} bytes, more than the limit of {limit} (MAX_IDX_BYTES)"
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// `"pixel"` or `"label"`.
        what: &'static str,
        /// Data bytes the header declares.
        declared: u64,
        /// The limit, [`MAX_IDX_BYTES`].
        limit: u64,
    },

    /// The IDX header of a gzip file declares more data than the file can decompress to
    /// ([`MAX_GZIP_RATIO`] times its size); nothing was read or allocated for it.
    #[error(
        "impossible size: the header of {path} declares {declared} {what} bytes, but its {compressed} gzip bytes decompress to at most {bound} (MAX_GZIP_RATIO)"
    )]
    ImpossibleSize {
        /// The file.
        path: PathBuf,
        /// `"pixel"` or `"label"`.
        what: &'static str,
        /// Data bytes the header declares.
        declared: u64,
        /// Size of the compressed file.
        compressed: u64,
        /// The most bytes it can decompress to.
        bound: u64,
    },

    /// A CSV line is longer than [`MAX_CSV_LINE_BYTES`] (its newline included); reading
    /// stopped there.
    #[error("line {line} of {path} is longer than {limit} bytes (MAX_CSV_LINE_BYTES)")]
    CsvLineTooLong {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// The limit, [`MAX_CSV_LINE_BYTES`].
        limit: usize,
    },

    /// The (decompressed) CSV text is longer than [`MAX_CSV_BYTES`]; reading stopped there.
    #[error("{path} holds more than {limit} bytes of CSV text (MAX_CSV_BYTES)")]
    CsvTooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, [`MAX_CSV_BYTES`].
        limit: u64,
    },

    /// The file holds more data bytes than its header promises.
    #[error(
        "trailing garbage: {extra} bytes after the {expected} {what} bytes the header promises in {path}"
    )]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// `"pixel"` or `"label"`.
        what: &'static str,
        /// Data bytes the header promises.
        expected: u64,
        /// Bytes found beyond them (counted up to [`MAX_TRAILING_BYTES_COUNTED`]).
        extra: u64,
    },

    /// A label is not below the expected number of classes.
    #[error(
        "label {value} at index {index} in {path} is out of range: expected fewer than {num_classes} classes"
    )]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// Position of the label in the file (0-based).
        index: usize,
        /// The offending label.
        value: u8,
        /// The number of classes labels must stay below.
        num_classes: usize,
    },

    /// The image and label files disagree on the number of examples.
    #[error(
        "count mismatch: {images_path} holds {images} images but {labels_path} holds {labels} labels"
    )]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// Number of images.
        images: usize,
        /// The label file.
        labels_path: PathBuf,
        /// Number of labels.
        labels: usize,
    },

    /// A line of a CSV file is malformed.
    #[error("{path}, line {line}: {reason}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },

    /// A text file is not valid UTF-8.
    #[error("{path} is not UTF-8 text: invalid bytes on line {line}")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// The line (1-based) holding the first invalid byte.
        line: usize,
    },

    /// A word list holds no words (the file is empty or only blank lines).
    #[error("{path} holds no words")]
    NoWords {
        /// The file.
        path: PathBuf,
    },

    /// A word holds a character its vocabulary does not know.
    #[error("unknown character {ch:?} at position {position} of {word:?}: not in the vocabulary")]
    UnknownChar {
        /// The word.
        word: String,
        /// The character's position in the word (0-based, in characters).
        position: usize,
        /// The character.
        ch: char,
    },

    /// A word does not fit in the rows being encoded.
    #[error(
        "{word:?} has {len} characters, too long for rows of block size {block_size} (at most \
         {} characters)", block_size.saturating_sub(1)
    )]
    WordTooLong {
        /// The word.
        word: String,
        /// Its length in characters.
        len: usize,
        /// The block size of the rows.
        block_size: usize,
    },

    /// Neither `stem` nor `stem.gz` exists in the folder searched by [`find_idx_file`].
    #[error("no file named `{stem}` or `{stem}.gz` in {dir}")]
    NotFound {
        /// The folder searched.
        dir: PathBuf,
        /// The file name tried (and, with `.gz` appended, the second one).
        stem: String,
    },
}
