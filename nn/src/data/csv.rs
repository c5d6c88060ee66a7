//! scikit-learn's digits CSV (the UCI 8x8 digits).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use ndarray::{Array1, Array2};

use super::DataError;
use super::input::{Input, input_error};

/// Number of pixels of one scikit-learn digits image (8x8).
const DIGITS_PIXELS: usize = 64;
/// Largest pixel value in the digits data (a count of "on" pixels in a 4x4 block).
const DIGITS_MAX_PIXEL: u8 = 16;
/// Largest class label in the digits data.
const DIGITS_MAX_LABEL: u8 = 9;

/// Longest CSV line accepted, its newline included (64 KiB; a digits line has at most
/// 65 × 3 = 195 bytes). Reading stops at the first longer line with
/// [`DataError::CsvLineTooLong`], so a gzip bomb holding one huge line costs 64 KiB.
pub const MAX_CSV_LINE_BYTES: usize = 1 << 16;

/// Most (decompressed) CSV text read, 1 GiB; reading stops past it with
/// [`DataError::CsvTooLarge`].
pub const MAX_CSV_BYTES: u64 = 1 << 30;

/// Reads scikit-learn's digits CSV (`digits.csv.gz` or plain `digits.csv`): returns the pixels,
/// shape `(n, 64)` (8x8 images, row-major, values `0..=16`), and the labels `0..=9`, shape `(n,)`.
///
/// The file has no header; each line holds 65 comma-separated integers, the last one the
/// label. Blank lines and `\r\n` line ends are accepted. Gzip is recognised by its magic bytes.
///
/// Note the pixel range: divide by 16, not 255, to scale to `[0, 1]`.
///
/// # Errors
///
/// [`DataError::Csv`] naming the file and the 1-based line for a line with the wrong number
/// of fields, a field that is not an integer, or a value out of range; [`DataError::Io`] or
/// [`DataError::Gzip`] if the file cannot be read; [`DataError::CsvLineTooLong`] for a
/// line longer than [`MAX_CSV_LINE_BYTES`], [`DataError::CsvTooLarge`] past
/// [`MAX_CSV_BYTES`] of text.
pub fn read_digits_csv(path: impl AsRef<Path>) -> Result<(Array2<u8>, Array1<u8>), DataError> {
    let path = path.as_ref();
    let input = Input::open(path)?;
    let is_gzip = input.is_gzip;
    let mut reader = BufReader::new(input.reader);
    let csv_error = |line: usize, reason: String| DataError::Csv {
        path: path.to_path_buf(),
        line,
        reason,
    };

    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let mut bytes = Vec::new();
    let mut total = 0_u64;
    let mut line_no = 0;
    loop {
        line_no += 1;
        bytes.clear();
        // Read at most one byte past the limit: a huge line is never held in memory.
        let read = (&mut reader)
            .take(MAX_CSV_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut bytes)
            .map_err(|e| input_error(path, is_gzip, e))?;
        if read == 0 {
            break;
        }
        if bytes.len() > MAX_CSV_LINE_BYTES {
            return Err(DataError::CsvLineTooLong {
                path: path.to_path_buf(),
                line: line_no,
                limit: MAX_CSV_LINE_BYTES,
            });
        }
        total += read as u64;
        if total > MAX_CSV_BYTES {
            return Err(DataError::CsvTooLarge {
                path: path.to_path_buf(),
                limit: MAX_CSV_BYTES,
            });
        }
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return Err(csv_error(line_no, "not valid UTF-8 text".into()));
        };
        let line = text.trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = 0;
        for (column, field) in line.split(',').enumerate() {
            fields += 1;
            if column > DIGITS_PIXELS {
                continue; // counted, reported below
            }
            let field = field.trim();
            let (max, what) = if column == DIGITS_PIXELS {
                (DIGITS_MAX_LABEL, "label")
            } else {
                (DIGITS_MAX_PIXEL, "pixel")
            };
            let value = field
                .parse::<u8>()
                .ok()
                .filter(|&v| v <= max)
                .ok_or_else(|| {
                    csv_error(
                        line_no,
                        format!(
                            "column {} ({what}): expected an integer in 0..={max}, found {field:?}",
                            column + 1
                        ),
                    )
                })?;
            if column == DIGITS_PIXELS {
                labels.push(value);
            } else {
                pixels.push(value);
            }
        }
        if fields != DIGITS_PIXELS + 1 {
            return Err(csv_error(
                line_no,
                format!(
                    "expected {} comma-separated fields (64 pixels and a label), found {fields}",
                    DIGITS_PIXELS + 1
                ),
            ));
        }
    }
    let n = labels.len();
    let pixels = Array2::from_shape_vec((n, DIGITS_PIXELS), pixels).map_err(|e| {
        csv_error(
            line_no,
            format!("cannot build a {n}x{DIGITS_PIXELS} array: {e}"),
        )
    })?;
    Ok((pixels, Array1::from_vec(labels)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::test_files::{TempDir, gzip};
    use ndarray::array;

    fn digits_line(pixel: u8, label: u8) -> String {
        let mut fields = vec![pixel.to_string(); 64];
        fields.push(label.to_string());
        fields.join(",")
    }

    #[test]
    fn reads_digits_csv_raw_and_gzip() {
        let dir = TempDir::new("csv-good");
        let text = format!(
            "{}\n{}\r\n\n{}",
            digits_line(0, 3),
            digits_line(16, 9),
            digits_line(5, 0)
        );
        let raw = dir.write("d.csv", text.as_bytes());
        let gz = dir.write("d.csv.gz", &gzip(text.as_bytes()));
        for path in [raw, gz] {
            let (x, y) = read_digits_csv(&path).unwrap();
            assert_eq!(x.shape(), &[3, 64]);
            assert_eq!(y, array![3, 9, 0]);
            assert!(x.row(1).iter().all(|&v| v == 16));
            assert!(x.row(2).iter().all(|&v| v == 5));
        }
        let empty = dir.write("empty.csv", b"");
        let (x, y) = read_digits_csv(empty).unwrap();
        assert_eq!((x.shape(), y.len()), (&[0, 64][..], 0));
    }

    #[test]
    fn bad_digits_csv_lines_name_the_line() {
        let dir = TempDir::new("csv-bad");
        let good = digits_line(1, 1);
        let cases = [
            (format!("{good}\n{good},4\n"), 2, "found 66"),
            (format!("{good}\n\n1,2,3\n"), 3, "found 3"),
            (format!("{}\n", good.replacen('1', "x", 1)), 1, "\"x\""),
            (format!("{good}\n{}\n", digits_line(17, 1)), 2, "pixel"),
            (format!("{}\n", digits_line(0, 10)), 1, "column 65 (label)"),
            (format!("{}\n", good.replacen('1', "-1", 1)), 1, "\"-1\""),
            (format!("{}\n", good.replacen('1', "1.5", 1)), 1, "\"1.5\""),
        ];
        for (i, (text, line, needle)) in cases.into_iter().enumerate() {
            for (kind, bytes) in [
                ("raw", text.as_bytes().to_vec()),
                ("gz", gzip(text.as_bytes())),
            ] {
                let path = dir.write(&format!("{i}.{kind}"), &bytes);
                let err = read_digits_csv(&path).unwrap_err();
                match &err {
                    DataError::Csv { line: got, .. } => assert_eq!(*got, line, "{err}"),
                    other => panic!("case {i}: expected a CSV error, got {other}"),
                }
                let msg = err.to_string();
                assert!(msg.contains(&format!("line {line}")), "{msg}");
                assert!(msg.contains(needle), "case {i}: {msg}");
                assert!(msg.contains(&path.display().to_string()), "{msg}");
            }
        }
        let path = dir.write("utf8.csv", b"0,\xff\n");
        let err = read_digits_csv(path).unwrap_err();
        assert!(matches!(err, DataError::Csv { line: 1, .. }), "{err}");
    }
}
