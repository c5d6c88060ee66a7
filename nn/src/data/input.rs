//! An opened data file, gzip-compressed or raw, read with errors that name it.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::DataError;

/// An opened data file: a reader over its (decompressed) bytes.
pub(super) struct Input<'p> {
    pub(super) path: &'p Path,
    pub(super) is_gzip: bool,
    pub(super) reader: Box<dyn Read>,
    /// The size of the file on disk (`None` for a pipe or other non-regular file).
    pub(super) file_len: Option<u64>,
}

/// Largest body (pixels or labels) an IDX file may declare, 1 GiB: 20 times the 47 MB of
/// MNIST's training images. A larger header count is refused with
/// [`DataError::TooLarge`] before anything is read or allocated.
pub const MAX_IDX_BYTES: u64 = 1 << 30;

/// The most bytes one byte of a gzip file can decompress to: deflate's maximal expansion
/// (a 258-byte match coded in 2 bits) is 1032 to 1. An IDX header declaring more data than
/// `MAX_GZIP_RATIO` times the compressed file's size is refused with
/// [`DataError::ImpossibleSize`] before anything is read.
pub const MAX_GZIP_RATIO: u64 = 1032;

/// How many bytes of trailing data after an IDX body are counted for
/// [`DataError::TrailingBytes`] (64 MiB): reading stops there, so a gzip bomb appended to a
/// good file is not decompressed to the end.
pub const MAX_TRAILING_BYTES_COUNTED: u64 = 1 << 26;

/// Capacity reserved up front for an IDX body at most (16 MiB); beyond it the buffer grows
/// with the bytes actually decompressed.
const INITIAL_BODY_CAPACITY: u64 = 1 << 24;

impl<'p> Input<'p> {
    /// Opens `path`, sniffing the gzip magic bytes `1f 8b`.
    pub(super) fn open(path: &'p Path) -> Result<Self, DataError> {
        let io_error = |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_error)?;
        let file_len = file
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        let mut file = BufReader::new(file);
        let mut magic = [0_u8; 2];
        let sniffed = read_up_to(&mut file, &mut magic).map_err(io_error)?;
        let is_gzip = magic[..sniffed] == [0x1f, 0x8b];
        let raw = Cursor::new(magic[..sniffed].to_vec()).chain(file);
        let reader: Box<dyn Read> = if is_gzip {
            // Multi-member aware, as gzip requires; non-gzip bytes after the last member
            // are reported as an error rather than silently ignored.
            Box::new(MultiGzDecoder::new(raw))
        } else {
            Box::new(raw)
        };
        Ok(Input {
            path,
            is_gzip,
            reader,
            file_len,
        })
    }

    fn error(&self, source: io::Error) -> DataError {
        input_error(self.path, self.is_gzip, source)
    }

    /// Reads an IDX header of `N` big-endian `u32`s and checks the magic number.
    pub(super) fn read_header<const N: usize>(
        &mut self,
        magic: u32,
        kind: &'static str,
    ) -> Result<[u32; N], DataError> {
        let mut bytes = [0_u8; 16];
        let bytes = &mut bytes[..4 * N];
        let found = read_up_to(&mut self.reader, bytes).map_err(|e| self.error(e))?;
        // A wrong magic number is the more helpful message, even for a short file.
        if found >= 4 {
            let got = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            if got != magic {
                return Err(DataError::WrongMagic {
                    path: self.path.to_path_buf(),
                    found: got,
                    expected: magic,
                    kind,
                });
            }
        }
        if found < bytes.len() {
            return Err(DataError::TruncatedHeader {
                path: self.path.to_path_buf(),
                kind,
                expected: bytes.len(),
                found,
            });
        }
        let mut header = [0_u32; N];
        for (value, chunk) in header.iter_mut().zip(bytes.chunks_exact(4)) {
            *value = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        Ok(header)
    }

    /// Reads exactly `len` data bytes and checks that nothing follows them.
    pub(super) fn read_body(
        &mut self,
        len: usize,
        what: &'static str,
    ) -> Result<Vec<u8>, DataError> {
        let expected = len as u64;
        if expected > MAX_IDX_BYTES {
            return Err(DataError::TooLarge {
                path: self.path.to_path_buf(),
                what,
                declared: expected,
                limit: MAX_IDX_BYTES,
            });
        }
        // The most (decompressed) bytes the file can hold: its size, or for gzip its size
        // times deflate's expansion bound.
        let bound = match self.file_len {
            Some(n) if self.is_gzip => n.saturating_mul(MAX_GZIP_RATIO),
            Some(n) => n,
            None => u64::MAX,
        };
        if self.is_gzip && expected > bound {
            return Err(DataError::ImpossibleSize {
                path: self.path.to_path_buf(),
                what,
                declared: expected,
                compressed: self.file_len.unwrap_or(0),
                bound,
            });
        }
        // Never trust the header for the allocation: reserve at most what the file can
        // hold (and 16 MiB), then grow with the bytes actually present; never read more
        // than one byte past the declared length.
        let capacity = expected.min(bound).min(INITIAL_BODY_CAPACITY);
        let mut data = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        (&mut self.reader)
            .take(expected.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|e| self.error(e))?;
        let found = data.len() as u64;
        if found < expected {
            return Err(DataError::Truncated {
                path: self.path.to_path_buf(),
                what,
                expected,
                found,
            });
        }
        if found > expected {
            let rest = io::copy(
                &mut (&mut self.reader).take(MAX_TRAILING_BYTES_COUNTED),
                &mut io::sink(),
            )
            .map_err(|e| self.error(e))?;
            return Err(DataError::TrailingBytes {
                path: self.path.to_path_buf(),
                what,
                expected,
                extra: found - expected + rest,
            });
        }
        Ok(data)
    }
}

/// Wraps an I/O error raised while reading `path` (through the gzip decoder if `is_gzip`).
pub(super) fn input_error(path: &Path, is_gzip: bool, source: io::Error) -> DataError {
    let path = path.to_path_buf();
    if is_gzip {
        DataError::Gzip { path, source }
    } else {
        DataError::Io { path, source }
    }
}

/// Fills `buf` as far as the input allows; returns the number of bytes read (short only at EOF).
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
