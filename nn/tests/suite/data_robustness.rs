//! Hostile dataset files: thousands of randomly corrupted IDX and CSV files (raw and gzip)
//! never panic the loaders, and every file they accept is read exactly as a straightforward
//! reference reader reads it; headers declaring huge counts and gzip bombs fail fast, with
//! a precise error, without decompressing the bomb.

use std::fs;
use std::io::{Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tapegrad_nn::data::{
    DataError, MAX_CSV_LINE_BYTES, MAX_GZIP_RATIO, MAX_IDX_BYTES, read_digits_csv, read_idx_images,
    read_idx_labels,
};

/// Corrupted files tried per format (each of: images raw, images gzip, labels raw, labels
/// gzip, CSV raw, CSV gzip).
const FILES_PER_FORMAT: usize = 2_000;

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("tapegrad-data-robust-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn header(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

fn good_images() -> Vec<u8> {
    let mut bytes = header(&[2051, 5, 3, 4]);
    bytes.extend((0..60).map(|i| (i * 37 % 256) as u8));
    bytes
}

fn good_labels() -> Vec<u8> {
    let mut bytes = header(&[2049, 6]);
    bytes.extend([3, 1, 4, 1, 5, 9]);
    bytes
}

fn good_csv() -> Vec<u8> {
    let line = |p: u8, l: u8| {
        let mut fields: Vec<String> = (0..64).map(|i| ((i + p) % 17).to_string()).collect();
        fields.push(l.to_string());
        fields.join(",")
    };
    format!("{}\n{}\r\n\n{}\n", line(0, 3), line(5, 9), line(16, 0)).into_bytes()
}

/// One random corruption of `bytes`: flipped bits, overwritten bytes, a cut, an insertion,
/// a deletion, appended bytes, a header field set to a random or extreme value, or a
/// copied chunk; several in a row sometimes.
fn mutate(rng: &mut StdRng, bytes: &mut Vec<u8>, csv: bool) {
    for _ in 0..rng.random_range(1..=3) {
        let len = bytes.len();
        match rng.random_range(0..9) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                bytes[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                bytes[i] = if csv {
                    *b",\n\r 0123456789x-+.\xff"
                        .get(rng.random_range(0..19))
                        .unwrap()
                } else {
                    rng.random()
                };
            }
            2 => bytes.truncate(rng.random_range(0..=len)),
            3 => {
                let i = rng.random_range(0..=len);
                let b = if csv {
                    *b",\n9".get(rng.random_range(0..3)).unwrap()
                } else {
                    rng.random()
                };
                bytes.insert(i, b);
            }
            4 if len > 0 => {
                bytes.remove(rng.random_range(0..len));
            }
            5 => {
                for _ in 0..rng.random_range(1..20) {
                    bytes.push(rng.random());
                }
            }
            6 if !csv && len >= 8 => {
                // A header field: the count or a dimension.
                let field = rng.random_range(1..(len.min(16) / 4));
                let value: u32 = match rng.random_range(0..4) {
                    0 => rng.random(),
                    1 => u32::MAX,
                    2 => 0,
                    _ => rng.random_range(0..10),
                };
                bytes[4 * field..4 * field + 4].copy_from_slice(&value.to_be_bytes());
            }
            7 if len > 4 => {
                let start = rng.random_range(0..len);
                let end = rng.random_range(start..=len);
                let chunk = bytes[start..end].to_vec();
                let at = rng.random_range(0..=bytes.len());
                bytes.splice(at..at, chunk);
            }
            _ => {
                if len > 0 {
                    let i = rng.random_range(0..len);
                    bytes[i] = bytes[i].wrapping_add(1);
                }
            }
        }
    }
}

/// A corrupted file of the format: for gzip, either the content is corrupted then
/// compressed (to reach the parser), or the compressed bytes are corrupted (to reach the
/// decoder).
fn corrupted(rng: &mut StdRng, good: &[u8], gz: bool, csv: bool) -> Vec<u8> {
    let mut bytes = good.to_vec();
    if !gz {
        mutate(rng, &mut bytes, csv);
        return bytes;
    }
    if rng.random_bool(0.5) {
        mutate(rng, &mut bytes, csv);
        gzip(&bytes)
    } else {
        let mut compressed = gzip(&bytes);
        mutate(rng, &mut compressed, false);
        compressed
    }
}

/// The reference decoder: the file's bytes, gunzipped if they start with the gzip magic;
/// `None` if the gzip stream is bad.
fn reference_bytes(file: &[u8]) -> Option<Vec<u8>> {
    if file.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        MultiGzDecoder::new(file).read_to_end(&mut out).ok()?;
        Some(out)
    } else {
        Some(file.to_vec())
    }
}

fn be32(bytes: &[u8], i: usize) -> u32 {
    u32::from_be_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap())
}

/// IDX images by the book: shape and pixels, or `None`.
fn reference_images(file: &[u8]) -> Option<(Vec<usize>, Vec<u8>)> {
    let bytes = reference_bytes(file)?;
    if bytes.len() < 16 || be32(&bytes, 0) != 2051 {
        return None;
    }
    let [n, rows, cols] = [1, 2, 3].map(|i| be32(&bytes, i) as usize);
    if rows == 0 || cols == 0 || bytes.len() - 16 != n.checked_mul(rows)?.checked_mul(cols)? {
        return None;
    }
    Some((vec![n, rows, cols], bytes[16..].to_vec()))
}

fn reference_labels(file: &[u8]) -> Option<Vec<u8>> {
    let bytes = reference_bytes(file)?;
    if bytes.len() < 8 || be32(&bytes, 0) != 2049 || bytes.len() - 8 != be32(&bytes, 1) as usize {
        return None;
    }
    Some(bytes[8..].to_vec())
}

/// The digits CSV by the book: lines split on `\n`, trimmed, blank ones skipped, 65 integer
/// fields, pixels `0..=16`, label `0..=9`.
fn reference_csv(file: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let bytes = reference_bytes(file)?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for line in text.split('\n') {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != 65 {
            return None;
        }
        for (i, field) in fields.iter().enumerate() {
            let v: u8 = field.trim().parse().ok()?;
            if i == 64 {
                (v <= 9).then_some(())?;
                labels.push(v);
            } else {
                (v <= 16).then_some(())?;
                pixels.push(v);
            }
        }
    }
    Some((pixels, labels))
}

/// Feeds [`FILES_PER_FORMAT`] corrupted files of one format to `load`; returns how many it
/// accepted. Panics (the test fails) if `load` panics or accepts a file differently from
/// `reference`.
fn fuzz<T: PartialEq + std::fmt::Debug>(
    tag: &str,
    good: &[u8],
    gz: bool,
    csv: bool,
    load: impl Fn(&Path) -> Result<T, DataError>,
    reference: impl Fn(&[u8]) -> Option<T>,
) -> usize {
    let dir = Scratch::new(tag);
    let mut rng =
        StdRng::seed_from_u64(0xda7a ^ (gz as u64) ^ ((csv as u64) << 1) ^ tag.len() as u64);
    let mut accepted = 0;
    for i in 0..FILES_PER_FORMAT {
        let file = corrupted(&mut rng, good, gz, csv);
        let path = dir.write(&format!("{i}"), &file);
        let got = catch_unwind(AssertUnwindSafe(|| load(&path)))
            .unwrap_or_else(|_| panic!("{tag}: the loader panicked on file {i}: {file:?}"));
        if let Ok(value) = got {
            accepted += 1;
            let want = reference(&file);
            assert_eq!(
                Some(&value),
                want.as_ref(),
                "{tag}: file {i} read wrongly: {file:?}"
            );
        }
        let _ = fs::remove_file(&path);
    }
    eprintln!("{tag}: {FILES_PER_FORMAT} corrupted files, {accepted} accepted, 0 panics");
    accepted
}

#[test]
fn corrupted_idx_images_never_panic_nor_read_wrong_pixels() {
    for gz in [false, true] {
        let tag = if gz { "images-gz" } else { "images-raw" };
        let accepted = fuzz(
            tag,
            &good_images(),
            gz,
            false,
            |p| read_idx_images(p).map(|a| (a.shape().to_vec(), a.iter().copied().collect())),
            reference_images,
        );
        assert!(accepted > 0, "{tag}: no corrupted file was accepted at all");
    }
}

#[test]
fn corrupted_idx_labels_never_panic_nor_read_wrong_labels() {
    for gz in [false, true] {
        let tag = if gz { "labels-gz" } else { "labels-raw" };
        let accepted = fuzz(
            tag,
            &good_labels(),
            gz,
            false,
            |p| read_idx_labels(p).map(|a| a.to_vec()),
            reference_labels,
        );
        assert!(accepted > 0, "{tag}: no corrupted file was accepted at all");
    }
}

#[test]
fn corrupted_csv_never_panics_nor_reads_wrong_values() {
    assert!(reference_csv(&good_csv()).is_some());
    for gz in [false, true] {
        let tag = if gz { "csv-gz" } else { "csv-raw" };
        let accepted = fuzz(
            tag,
            &good_csv(),
            gz,
            true,
            |p| read_digits_csv(p).map(|(x, y)| (x.iter().copied().collect(), y.to_vec())),
            reference_csv,
        );
        assert!(accepted > 0, "{tag}: no corrupted file was accepted at all");
    }
}

/// `members` copies of one gzip member holding `chunk`, concatenated (a valid multi-member
/// gzip file of `members × chunk.len()` bytes, cheap to build).
fn gzip_bomb(prefix: &[u8], chunk: &[u8], members: usize) -> Vec<u8> {
    let mut file = gzip(prefix);
    let member = {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(chunk).unwrap();
        encoder.finish().unwrap()
    };
    for _ in 0..members {
        file.extend_from_slice(&member);
    }
    file
}

#[test]
fn a_small_gzip_claiming_a_huge_count_fails_at_once_with_the_precise_error() {
    let dir = Scratch::new("huge-count");
    // 3 MiB of zeros behind a header claiming 0xFFFFFFFF labels: over MAX_IDX_BYTES.
    let mut labels = header(&[2049, u32::MAX]);
    labels.extend(vec![0_u8; 3 << 20]);
    let path = dir.write("labels.gz", &gzip(&labels));
    let start = Instant::now();
    let err = read_idx_labels(&path).unwrap_err();
    assert!(
        matches!(err, DataError::TooLarge { declared, limit, what: "label", .. }
            if declared == u64::from(u32::MAX) && limit == MAX_IDX_BYTES),
        "{err}"
    );
    assert!(err.to_string().contains("MAX_IDX_BYTES"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(1));

    // 100 MB claimed (under the limit) by a file of a few KiB: more than it can decompress to.
    let mut labels = header(&[2049, 100_000_000]);
    labels.extend(vec![0_u8; 1000]);
    let gz = gzip(&labels);
    let path = dir.write("labels2.gz", &gz);
    let err = read_idx_labels(&path).unwrap_err();
    match err {
        DataError::ImpossibleSize {
            declared,
            compressed,
            bound,
            ..
        } => {
            assert_eq!(declared, 100_000_000);
            assert_eq!(compressed, gz.len() as u64);
            assert_eq!(bound, gz.len() as u64 * MAX_GZIP_RATIO);
        }
        other => panic!("expected ImpossibleSize, got {other}"),
    }
    // Images: 60000 × 28 × 28 claimed by a tiny file.
    let path = dir.write("images.gz", &gzip(&header(&[2051, 60_000, 28, 28])));
    let err = read_idx_images(&path).unwrap_err();
    assert!(
        matches!(err, DataError::ImpossibleSize { what: "pixel", .. }),
        "{err}"
    );
    // Raw: the header is believed only as far as the file goes.
    let path = dir.write("labels.raw", &header(&[2049, 1 << 29]));
    let err = read_idx_labels(&path).unwrap_err();
    assert!(
        matches!(err, DataError::Truncated { found: 0, .. }),
        "{err}"
    );

    // A good labels file followed by a 1 GiB gzip bomb: the trailing bytes are counted only
    // up to a bound, fast.
    let good = good_labels();
    let path = dir.write(
        "bomb-labels.gz",
        &gzip_bomb(&good, &vec![0_u8; 1 << 20], 1024),
    );
    let start = Instant::now();
    let err = read_idx_labels(&path).unwrap_err();
    assert!(matches!(err, DataError::TrailingBytes { .. }), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_gzip_bomb_csv_line_fails_fast_with_the_line_length_error() {
    let dir = Scratch::new("csv-bomb");
    // About 1 MiB of gzip holding one line of 1 GiB (1024 members of 1 MiB of '1').
    let bomb = gzip_bomb(b"", &vec![b'1'; 1 << 20], 1024);
    assert!(bomb.len() < 2 << 20, "{}", bomb.len());
    let path = dir.write("bomb.csv.gz", &bomb);
    let start = Instant::now();
    let err = read_digits_csv(&path).unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(err, DataError::CsvLineTooLong { line: 1, limit, .. } if limit == MAX_CSV_LINE_BYTES),
        "{err}"
    );
    assert!(err.to_string().contains("MAX_CSV_LINE_BYTES"), "{err}");
    // Only the first line's limit is decompressed: milliseconds, not seconds.
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");

    // The same after good lines, raw: the line number is exact.
    let mut text = good_csv();
    text.extend(vec![b'7'; MAX_CSV_LINE_BYTES + 1]);
    let path = dir.write("long.csv", &text);
    let err = read_digits_csv(&path).unwrap_err();
    assert!(
        matches!(err, DataError::CsvLineTooLong { line: 5, .. }),
        "{err}"
    );
    // A line of exactly the limit (newline included) is read (and then rejected as a CSV
    // line with the wrong fields, not for its length).
    let mut text = vec![b'7'; MAX_CSV_LINE_BYTES - 1];
    text.push(b'\n');
    let path = dir.write("limit.csv", &text);
    let err = read_digits_csv(&path).unwrap_err();
    assert!(matches!(err, DataError::Csv { line: 1, .. }), "{err}");
}
