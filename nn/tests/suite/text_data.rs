//! Word lists for character-level language models: makemore's `names.txt`, its vocabulary
//! and padded rows, the seeded split, and typed errors for files and words that do not fit.

use std::fs;
use std::path::PathBuf;

use ndarray::{Array2, s};
use tapegrad_nn::data::{
    Batches, CharVocab, DataError, block_size, encode_rows, read_words, split_last, take_rows,
};

fn names() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/names/names.txt");
    read_words(path).unwrap()
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tapegrad-text-{tag}-{}", std::process::id()));
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

#[test]
fn names_txt_encodes_as_makemore_does() {
    let words = names();
    assert_eq!(words.len(), 32_033);
    assert_eq!(&words[..3], ["emma", "olivia", "ava"]);
    let vocab = CharVocab::new(&words);
    assert_eq!(vocab.len(), 27);
    assert_eq!(
        vocab.chars().iter().collect::<String>(),
        "abcdefghijklmnopqrstuvwxyz"
    );
    assert_eq!(block_size(&words), 16); // the longest name has 15 letters

    let (x, y) = encode_rows::<f32, _>(&words, &vocab, block_size(&words)).unwrap();
    assert_eq!(x.shape(), &[32_033, 16]);
    assert_eq!(y.shape(), &[32_033, 16]);
    // "emma": e=5, m=13, a=1
    let row = |a: &Array2<f32>| a.row(0).to_vec();
    assert_eq!(row(&x)[..6], [0.0, 5.0, 13.0, 13.0, 1.0, 0.0]);
    assert_eq!(row(&y)[..6], [5.0, 13.0, 13.0, 1.0, 0.0, -1.0]);
    assert!(row(&y)[5..].iter().all(|&v| v == -1.0));
    // y is x shifted by one step wherever y counts.
    for i in 0..words.len() {
        for t in 0..15 {
            if y[[i, t]] > 0.0 {
                assert_eq!(x[[i, t + 1]], y[[i, t]]);
            }
        }
        let n = words[i].len();
        assert_eq!(y[[i, n]], 0.0);
        assert_eq!(
            vocab.decode(&x.row(i).slice(s![1..]).mapv(|v| v as usize).to_vec()),
            words[i]
        );
    }
    assert!(y.iter().all(|&v| v == -1.0 || (0.0..27.0).contains(&v)));

    // Batches and take_rows carry the rows to fit.
    let batches = Batches::shuffled(words.len(), 32, 0);
    assert_eq!(batches.len(), 1002); // 32,033 rows in batches of 32
    let pick = [3, 1, 4];
    assert_eq!(take_rows(&y, &pick).row(1), y.row(1));
}

#[test]
fn the_split_is_seeded_and_holds_out_the_last() {
    let words = names();
    let (train, test) = split_last(&words, 1000, 3141);
    assert_eq!((train.len(), test.len()), (31_033, 1000));
    assert_eq!(
        split_last(&words, 1000, 3141),
        (train.clone(), test.clone())
    );
    assert_ne!(split_last(&words, 1000, 2).1, test);
    let mut all: Vec<&String> = train.iter().chain(&test).collect();
    all.sort();
    let mut sorted: Vec<&String> = words.iter().collect();
    sorted.sort();
    assert_eq!(all, sorted);
}

#[test]
fn unreadable_and_empty_files_are_typed_errors() {
    let scratch = Scratch::new("files");
    let missing = read_words(scratch.0.join("nope.txt")).unwrap_err();
    assert!(matches!(missing, DataError::Io { .. }), "{missing}");

    let bad = scratch.write("latin1.txt", b"emma\nzo\xeb\nava\n");
    let err = read_words(&bad).unwrap_err();
    assert!(matches!(err, DataError::NotUtf8 { line: 2, .. }), "{err}");
    assert!(err.to_string().contains("line 2"), "{err}");

    for (name, bytes) in [("empty.txt", &b""[..]), ("blank.txt", &b"\n  \r\n\t\n"[..])] {
        let err = read_words(scratch.write(name, bytes)).unwrap_err();
        assert!(matches!(err, DataError::NoWords { .. }), "{err}");
    }

    let crlf = scratch.write("crlf.txt", b" emma \r\n\r\nava\r\n");
    assert_eq!(read_words(crlf).unwrap(), ["emma", "ava"]);
}

#[test]
fn arbitrary_bytes_never_panic() {
    let scratch = Scratch::new("bytes");
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for i in 0..300 {
        let len = (i * 7) % 97;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                [b'a', b'\n', b' ', 0xc3, 0xa9, 0xff, b'z'][(state % 7) as usize]
            })
            .collect();
        let path = scratch.write("random.txt", &bytes);
        if let Ok(words) = read_words(&path) {
            let vocab = CharVocab::new(&words);
            let (x, _) = encode_rows::<f64, _>(&words, &vocab, block_size(&words)).unwrap();
            assert_eq!(x.nrows(), words.len());
        }
    }
}

#[test]
fn words_that_do_not_fit_are_typed_errors() {
    let vocab = CharVocab::new(&["abc"]);
    let err = vocab.encode("cab!").unwrap_err();
    assert!(
        matches!(
            err,
            DataError::UnknownChar {
                position: 3,
                ch: '!',
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "unknown character '!' at position 3 of \"cab!\": not in the vocabulary"
    );
    let err = encode_rows::<f32, _>(&["ab", "xa"], &vocab, 3).unwrap_err();
    assert!(matches!(
        err,
        DataError::UnknownChar {
            position: 0,
            ch: 'x',
            ..
        }
    ));
    let err = encode_rows::<f32, _>(&["ab", "abc"], &vocab, 3).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::WordTooLong {
                len: 3,
                block_size: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(vocab.decode(&[]), "");
    assert_eq!(vocab.decode(&[1, 2, 3]), "abc");
}
