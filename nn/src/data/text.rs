//! Word lists for character-level language models (makemore's): [`read_words`],
//! [`CharVocab`], the padded rows of [`encode_rows`] and the seeded [`split_last`].

use std::path::Path;

use ndarray::Array2;
use tapegrad_autograd::Float;

use super::batch::shuffled_indices;
use super::error::DataError;

/// Reads a word list: one word per line, each trimmed of surrounding whitespace, blank
/// lines dropped (makemore's `names.txt`).
///
/// Errors: [`DataError::Io`] if the file cannot be read, [`DataError::NotUtf8`] (with the
/// line) if it is not UTF-8, [`DataError::NoWords`] if it holds no word. Never panics.
///
/// ```
/// use tapegrad_nn::data::read_words;
///
/// let path = std::env::temp_dir().join(format!("tapegrad-words-{}.txt", std::process::id()));
/// std::fs::write(&path, "emma\n  olivia \n\nava\n").unwrap();
/// assert_eq!(read_words(&path)?, ["emma", "olivia", "ava"]);
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), tapegrad_nn::data::DataError>(())
/// ```
pub fn read_words(path: impl AsRef<Path>) -> Result<Vec<String>, DataError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|e| DataError::NotUtf8 {
        path: path.to_path_buf(),
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
    })?;
    let words: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect();
    if words.is_empty() {
        return Err(DataError::NoWords {
            path: path.to_path_buf(),
        });
    }
    Ok(words)
}

/// The characters of a word list as token indices: index 0 is the start/end token, the
/// distinct characters follow from 1 in sorted order (makemore's `stoi`/`itos`).
///
/// ```
/// use tapegrad_nn::data::CharVocab;
///
/// let vocab = CharVocab::new(&["emma", "ava"]);
/// assert_eq!(vocab.len(), 5); // the token, then a, e, m, v
/// assert_eq!(vocab.encode("mave")?, vec![3, 1, 4, 2]);
/// assert_eq!(vocab.decode(&[3, 1, 0, 4]), "ma"); // stops at the end token
/// assert!(vocab.encode("max").is_err());
/// # Ok::<(), tapegrad_nn::data::DataError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CharVocab {
    chars: Vec<char>,
}

impl CharVocab {
    /// The vocabulary of `words`: their distinct characters, sorted.
    pub fn new<W: AsRef<str>>(words: &[W]) -> Self {
        let mut chars: Vec<char> = words.iter().flat_map(|w| w.as_ref().chars()).collect();
        chars.sort_unstable();
        chars.dedup();
        CharVocab { chars }
    }

    /// The number of tokens: the characters plus the start/end token (the logits' size).
    pub fn len(&self) -> usize {
        self.chars.len() + 1
    }

    /// Always `false`: there is at least the start/end token.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The characters, in token order (token `i + 1` is `chars()[i]`).
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The token of `ch`, if it is in the vocabulary.
    pub fn index_of(&self, ch: char) -> Option<usize> {
        self.chars.binary_search(&ch).ok().map(|i| i + 1)
    }

    /// The tokens of `word` (without start or end token); [`DataError::UnknownChar`] at a
    /// character not in the vocabulary.
    pub fn encode(&self, word: &str) -> Result<Vec<usize>, DataError> {
        word.chars()
            .enumerate()
            .map(|(position, ch)| {
                self.index_of(ch).ok_or_else(|| DataError::UnknownChar {
                    word: word.to_string(),
                    position,
                    ch,
                })
            })
            .collect()
    }

    /// The characters of `tokens` up to the first end token (0). Panics at a token not in
    /// `0..len()`.
    #[track_caller]
    pub fn decode(&self, tokens: &[usize]) -> String {
        tokens
            .iter()
            .take_while(|&&t| t != 0)
            .map(|&t| {
                *self.chars.get(t - 1).unwrap_or_else(|| {
                    panic!("CharVocab::decode: token {t} is not in 0..{}", self.len())
                })
            })
            .collect()
    }
}

/// The block size makemore uses for `words`: the longest word's length (in characters)
/// plus one, room for the start token in `x` and the end token in `y`.
pub fn block_size<W: AsRef<str>>(words: &[W]) -> usize {
    words
        .iter()
        .map(|w| w.as_ref().chars().count())
        .max()
        .unwrap_or(0)
        + 1
}

/// makemore's rows: for each word `w` of `n` characters, `x = [0, w..., 0, ...]` and
/// `y = [w..., 0, -1, ...]`, both of length `block_size`: `x` starts with the start token
/// and is padded with it, `y` is `x` shifted by one step, ends with the end token and is
/// padded with `-1`, the index [`cross_entropy`](crate::losses::cross_entropy) ignores by
/// default. Returns `(x, y)`, each `[words.len(), block_size]`, as floats of `T` (what
/// [`Model::fit`](crate::model::Model::fit) and [`take_rows`](super::take_rows) take).
///
/// Errors: [`DataError::UnknownChar`], or [`DataError::WordTooLong`] for a word of
/// `block_size` characters or more (use [`block_size`]`(words)`).
///
/// ```
/// use ndarray::array;
/// use tapegrad_nn::data::{block_size, encode_rows, CharVocab};
///
/// let words = ["ab", "b"];
/// let vocab = CharVocab::new(&words);
/// let (x, y) = encode_rows::<f32, _>(&words, &vocab, block_size(&words))?;
/// assert_eq!(x, array![[0.0, 1.0, 2.0], [0.0, 2.0, 0.0]]);
/// assert_eq!(y, array![[1.0, 2.0, 0.0], [2.0, 0.0, -1.0]]);
/// # Ok::<(), tapegrad_nn::data::DataError>(())
/// ```
pub fn encode_rows<T: Float, W: AsRef<str>>(
    words: &[W],
    vocab: &CharVocab,
    block_size: usize,
) -> Result<(Array2<T>, Array2<T>), DataError> {
    let mut x = Array2::zeros((words.len(), block_size));
    let mut y = Array2::from_elem((words.len(), block_size), -T::one());
    for (i, word) in words.iter().enumerate() {
        let word = word.as_ref();
        let tokens = vocab.encode(word)?;
        if tokens.len() >= block_size {
            return Err(DataError::WordTooLong {
                word: word.to_string(),
                len: tokens.len(),
                block_size,
            });
        }
        for (t, &token) in tokens.iter().enumerate() {
            let token = T::from_f64(token as f64);
            x[[i, t + 1]] = token;
            y[[i, t]] = token;
        }
        y[[i, tokens.len()]] = T::zero();
    }
    Ok((x, y))
}

/// Splits `items` after a seeded shuffle ([`shuffled_indices`]): the last `n_test` of the
/// shuffled order are held out, as makemore's `randperm` split does. Returns
/// `(train, test)`. Panics if `n_test > items.len()`.
///
/// ```
/// use tapegrad_nn::data::split_last;
///
/// let (train, test) = split_last(&["a", "b", "c", "d"], 1, 42);
/// assert_eq!((train.len(), test.len()), (3, 1));
/// assert_eq!(split_last(&["a", "b", "c", "d"], 1, 42), (train, test)); // same seed, same split
/// ```
#[track_caller]
pub fn split_last<W: Clone>(items: &[W], n_test: usize, seed: u64) -> (Vec<W>, Vec<W>) {
    assert!(
        n_test <= items.len(),
        "split_last: cannot hold out {n_test} of {} items",
        items.len()
    );
    let order = shuffled_indices(items.len(), seed);
    let (train, test) = order.split_at(items.len() - n_test);
    let pick = |indices: &[usize]| indices.iter().map(|&i| items[i].clone()).collect();
    (pick(train), pick(test))
}
