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
}

impl<'p> Input<'p> {
    /// Opens `path`, sniffing the gzip magic bytes `1f 8b`.
    pub(super) fn open(path: &'p Path) -> Result<Self, DataError> {
        let io_error = |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = BufReader::new(File::open(path).map_err(io_error)?);
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
        // Never trust the header for the allocation: grow with the bytes actually present.
        let mut data = Vec::with_capacity(len.min(1 << 26));
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
            let rest = io::copy(&mut self.reader, &mut io::sink()).map_err(|e| self.error(e))?;
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
