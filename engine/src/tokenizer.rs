//! Text ⇄ token ids: a thin wrapper over either the Hugging Face `tokenizers` crate reading a
//! checkpoint's `tokenizer.json` ([`Tokenizer::from_file`]) or garnet's own SentencePiece
//! tokenizer built from a GGUF vocabulary ([`Tokenizer::from_vocab`], [`crate::spm`]), which
//! encodes identically; plus [`StreamDecoder`] for printing tokens as they are generated.
//!
//! Gemma's tokenizer is a SentencePiece-style BPE: spaces become "▁", there is no pre-tokenizer,
//! characters outside the vocabulary fall back to byte tokens `<0x00>`..`<0xFF>`, and the decoder
//! turns "▁" back into spaces and byte tokens back into UTF-8. Special tokens (`<|turn>`, ...)
//! written in the text map to their ids. garnet adds `<bos>` itself (see [`Tokenizer::encode`]).

use std::borrow::Borrow;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::spm::{SpmVocab, TokenType};
use crate::{Error, Result};

/// The tokenizer implementation behind a [`Tokenizer`].
enum Backend {
    /// Hugging Face `tokenizers` on a `tokenizer.json`.
    Hf(Box<tokenizers::Tokenizer>),
    /// garnet's SentencePiece tokenizer on a bare vocabulary.
    Spm(Box<SpmVocab>),
}

/// A loaded tokenizer. Cheap to share between threads (`Send + Sync`).
pub struct Tokenizer {
    inner: Backend,
    /// One past the largest id, added tokens included.
    vocab_size: usize,
    /// `is_byte[id]`: the token is a byte-fallback token `<0xHH>`.
    is_byte: Vec<bool>,
    /// `special[id]`: a control token, never text ([`Tokenizer::is_special`]).
    special: Vec<bool>,
    /// The token trie grammar constraints mask with, built on first use. Typed by the grammar
    /// layer (`constrain::GrammarVocab`), which depends on this module, not the other way round.
    pub(crate) grammar_vocab: OnceLock<Arc<dyn std::any::Any + Send + Sync>>,
    bos: Option<u32>,
    eos: Option<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.inner {
            Backend::Hf(_) => "tokenizer.json",
            Backend::Spm(_) => "sentencepiece vocabulary",
        };
        f.debug_struct("Tokenizer")
            .field("backend", &backend)
            .field("vocab_size", &self.vocab_size)
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Loads a `tokenizer.json`. Fails with [`Error::Tokenizer`] naming `path` if the file is
    /// missing or not a tokenizer the `tokenizers` crate understands.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = crate::files::read_capped(path, crate::files::MAX_TOKENIZER_BYTES, "tokenizer")
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Self::from_json(&bytes).map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))
    }

    /// A tokenizer from the bytes of a `tokenizer.json` ([`Tokenizer::from_file`] without the file).
    /// The error is a sentence saying what is wrong.
    pub fn from_json(json: &[u8]) -> std::result::Result<Self, String> {
        // `tokenizers` panics on malformed JSON inside its decoder (an `expect` in the decoder's
        // deserializer, found by fuzzing): the JSON is parsed in full first (strings included:
        // skipping them would let a bad escape through).
        serde_json::from_slice::<serde_json::Value>(json).map_err(|e| format!("not JSON: {e}"))?;
        let inner = tokenizers::Tokenizer::from_bytes(json).map_err(|e| e.to_string())?;
        let vocab = inner.get_vocab(true);
        let vocab_size = vocab.values().max().map_or(0, |&m| m as usize + 1);
        if vocab_size == 0 {
            return Err("empty vocabulary".into());
        }
        // Ids index per-token tables: an id far beyond the token count would size them.
        if vocab_size > vocab.len().saturating_mul(2).max(1 << 16) {
            return Err(format!("token id {} in a vocabulary of {} tokens", vocab_size - 1, vocab.len()));
        }
        let mut is_byte = vec![false; vocab_size];
        for (token, &id) in &vocab {
            is_byte[id as usize] = crate::spm::byte_token_value(token).is_some();
        }
        let mut special = vec![false; vocab_size];
        for (id, added) in inner.get_added_tokens_decoder() {
            if let Some(s) = special.get_mut(id as usize) {
                *s = added.special || tag_shaped(&added.content);
            }
        }
        let bos = inner.token_to_id("<bos>");
        let eos = inner.token_to_id("<eos>");
        Ok(Self {
            inner: Backend::Hf(Box::new(inner)),
            vocab_size,
            is_byte,
            special,
            grammar_vocab: OnceLock::new(),
            bos,
            eos,
        })
    }

    /// Builds a SentencePiece tokenizer from a bare vocabulary, as GGUF files carry it
    /// (`tokenizer.ggml.tokens`, `.scores`, `.token_type`, `.bos_token_id`, `.eos_token_id`,
    /// `.add_space_prefix`). For Gemma it encodes and decodes exactly like [`Tokenizer::from_file`]
    /// on the matching `tokenizer.json`; see [`crate::spm`]. Fails with [`Error::Tokenizer`] if the
    /// arrays are inconsistent or `bos`/`eos` is not in the vocabulary.
    pub fn from_vocab(
        tokens: Vec<String>,
        scores: Vec<f32>,
        types: Vec<i32>,
        bos: Option<u32>,
        eos: Option<u32>,
        add_space_prefix: bool,
    ) -> Result<Self> {
        Self::from_spm(SpmVocab::new(tokens, scores, types, add_space_prefix)?, bos, eos)
    }

    /// A tokenizer over a built SentencePiece vocabulary (e.g. one ranked by BPE merges, see
    /// [`SpmVocab::with_merges`]), with its `<bos>` / `<eos>` ids.
    pub fn from_spm(vocab: SpmVocab, bos: Option<u32>, eos: Option<u32>) -> Result<Self> {
        let vocab_size = vocab.len();
        for (name, id) in [("bos", bos), ("eos", eos)] {
            if let Some(id) = id.filter(|&id| id as usize >= vocab_size) {
                return Err(Error::Tokenizer(format!("{name} id {id} is not in the {vocab_size}-token vocabulary")));
            }
        }
        let is_byte = (0..vocab_size as u32).map(|id| vocab.is_byte(id)).collect();
        let special = (0..vocab_size as u32)
            .map(|id| match vocab.token_type(id) {
                Some(TokenType::Control | TokenType::Unknown | TokenType::Unused) => true,
                Some(TokenType::UserDefined) => vocab.token_str(id).is_some_and(tag_shaped),
                _ => false,
            })
            .collect();
        Ok(Self {
            inner: Backend::Spm(Box::new(vocab)),
            vocab_size,
            is_byte,
            special,
            grammar_vocab: OnceLock::new(),
            bos,
            eos,
        })
    }

    /// Encodes `text` into ids. Special-token strings inside `text` (e.g. `"<|turn>"`) become their
    /// ids. With `add_bos`, `<bos>` is prepended (an error if the vocabulary has none); the
    /// tokenizer's own post-processor is never applied.
    pub fn encode(&self, text: &str, add_bos: bool) -> Result<Vec<u32>> {
        let bos = match (add_bos, self.bos) {
            (false, _) => None,
            (true, Some(bos)) => Some(bos),
            (true, None) => return Err(Error::Tokenizer("add_bos: the vocabulary has no <bos>".into())),
        };
        let mut ids = Vec::new();
        ids.extend(bos);
        match &self.inner {
            Backend::Hf(hf) => {
                let encoding =
                    hf.encode_fast(text, false).map_err(|e| Error::Tokenizer(format!("encoding failed: {e}")))?;
                ids.extend_from_slice(encoding.get_ids());
            }
            Backend::Spm(spm) => ids.extend(spm.encode(text)),
        }
        Ok(ids)
    }

    /// Decodes ids to text, special tokens included. Invalid UTF-8 from byte-fallback tokens
    /// becomes U+FFFD. An id outside the vocabulary is [`Error::TokenOutOfRange`].
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.check_ids(ids)?;
        match &self.inner {
            Backend::Hf(hf) => hf.decode(ids, false).map_err(|e| Error::Tokenizer(format!("decoding failed: {e}"))),
            Backend::Spm(spm) => Ok(spm.decode(ids)),
        }
    }

    /// The id of a token string (ordinary or added), if it exists.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        match &self.inner {
            Backend::Hf(hf) => hf.token_to_id(token),
            Backend::Spm(spm) => spm.token_id(token),
        }
    }

    /// The token string of an id (raw, e.g. `"▁the"` or `"<0xE2>"`), if it exists.
    pub fn token_str(&self, id: u32) -> Option<String> {
        match &self.inner {
            Backend::Hf(hf) => hf.id_to_token(id),
            Backend::Spm(spm) => spm.token_str(id).map(str::to_owned),
        }
    }

    /// The bytes token `id` contributes to decoded text: a byte-fallback token `<0xNN>` its byte,
    /// "▁" a space, a special token its name. `None` for an id outside the vocabulary.
    pub fn token_bytes(&self, id: u32) -> Option<Vec<u8>> {
        let s = self.token_str(id)?;
        if self.is_byte.get(id as usize).copied().unwrap_or(false) {
            if let Some(b) = crate::spm::byte_token_value(&s) {
                return Some(vec![b]);
            }
        }
        Some(s.replace('\u{2581}', " ").into_bytes())
    }

    /// Whether token `id` is a control token rather than text: `<bos>`, `<eos>`, turn markers,
    /// `<unusedN>`, image markers. SentencePiece control / unknown / unused pieces, added tokens
    /// marked special, and added or user-defined tokens spelled like a tag (`<...>`, `[...]`).
    pub fn is_special(&self, id: u32) -> bool {
        self.special.get(id as usize).copied().unwrap_or(false)
    }

    /// Number of ids (one past the largest id), added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The id of `<bos>`, if the vocabulary has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// The id of the end-of-sequence token (`<eos>` for a `tokenizer.json`, the given `eos` for
    /// [`Tokenizer::from_vocab`]), if any.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// Starts an incremental decoder for generated tokens, borrowing this tokenizer (use
    /// [`StreamDecoder::new`] with an `Arc<Tokenizer>` for one that owns a handle).
    pub fn stream(&self) -> StreamDecoder<&Tokenizer> {
        StreamDecoder::new(self)
    }

    fn check_ids(&self, ids: &[u32]) -> Result<()> {
        match ids.iter().find(|&&id| id as usize >= self.vocab_size) {
            Some(&id) => Err(Error::TokenOutOfRange { id, vocab: self.vocab_size }),
            None => Ok(()),
        }
    }
}

/// Whether an added / user-defined token is spelled like a control tag (`<start_of_image>`,
/// `[multimodal]`): such tokens are markers in Gemma vocabularies even when not flagged special.
fn tag_shaped(s: &str) -> bool {
    s.len() > 2 && ((s.starts_with('<') && s.ends_with('>')) || (s.starts_with('[') && s.ends_with(']')))
}

/// Incremental decoder: feed ids one at a time, get back the text they complete.
///
/// Concatenating every [`push`](Self::push) result and the final [`finish`](Self::finish) gives
/// exactly [`Tokenizer::decode`] of all ids, and `push` only returns whole characters. It keeps a
/// window of ids starting at the last emitted chunk (`prefix..read` was emitted, `read..` is
/// pending), decodes `prefix..read` and `prefix..` and emits the difference, so decoders that
/// treat the start of a text specially cannot drop a leading "▁" space. Text is held back while
/// the newest id is a byte-fallback token (the `ByteFallback` decoder decodes a run of byte
/// tokens as a whole, and one invalid byte turns the whole run into U+FFFDs, so a run is only
/// settled once a non-byte token ends it) or while the text ends in U+FFFD.
#[derive(Debug)]
pub struct StreamDecoder<T: Borrow<Tokenizer> = Arc<Tokenizer>> {
    tok: T,
    ids: Vec<u32>,
    /// Start of the decode window: the first id of the last emitted chunk.
    prefix: usize,
    /// Ids before `read` have been emitted.
    read: usize,
}

/// Keep at most this many already-emitted ids before the window (bounds memory on long streams).
const STREAM_TRIM: usize = 256;

impl<T: Borrow<Tokenizer>> StreamDecoder<T> {
    /// A decoder over `tok`: a `&Tokenizer` or (the default) an `Arc<Tokenizer>`.
    pub fn new(tok: T) -> Self {
        Self { tok, ids: Vec::new(), prefix: 0, read: 0 }
    }

    fn tok(&self) -> &Tokenizer {
        self.tok.borrow()
    }

    /// Adds one id; returns the text it completes (often empty while a character is split across
    /// byte tokens). An id outside the vocabulary is [`Error::TokenOutOfRange`].
    pub fn push(&mut self, id: u32) -> Result<String> {
        self.tok().check_ids(&[id])?;
        self.ids.push(id);
        if self.tok().is_byte[id as usize] {
            return Ok(String::new());
        }
        match self.pending_text()? {
            Some(text) if !text.is_empty() && !text.ends_with('\u{FFFD}') => {
                self.advance();
                Ok(text)
            }
            _ => Ok(String::new()),
        }
    }

    /// Flushes whatever is held back (incomplete bytes become U+FFFD) and resets the decoder, so
    /// it can start a new stream.
    pub fn finish(&mut self) -> Result<String> {
        let text = if self.read < self.ids.len() {
            match self.pending_text()? {
                Some(text) => text,
                // The window's decoding is not an extension of what was emitted: give up on
                // exactness and emit the pending ids decoded alone.
                None => self.tok().decode(&self.ids[self.read..])?,
            }
        } else {
            String::new()
        };
        self.ids.clear();
        self.prefix = 0;
        self.read = 0;
        Ok(text)
    }

    /// Decoded text of the pending ids: `decode(prefix..)` minus `decode(prefix..read)`, or `None`
    /// when the former does not extend the latter.
    fn pending_text(&self) -> Result<Option<String>> {
        let window = &self.ids[self.prefix..];
        let emitted = self.tok().decode(&window[..self.read - self.prefix])?;
        let full = self.tok().decode(window)?;
        Ok(full.strip_prefix(emitted.as_str()).map(str::to_owned))
    }

    /// Marks every id as emitted and drops ids no window will need again.
    fn advance(&mut self) {
        self.prefix = self.read;
        self.read = self.ids.len();
        if self.prefix >= STREAM_TRIM {
            self.ids.drain(..self.prefix);
            self.read -= self.prefix;
            self.prefix = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Tokenizer {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/gemma4-tiny/dense_31b_like/bf16/tokenizer.json");
        Tokenizer::from_file(Path::new(path)).unwrap()
    }

    const TEXTS: &[&str] = &[
        "The cat sat on the mat.",
        " leading space, trailing space ",
        "two  spaces\tand a tab\nnew line\n\nparagraph",
        "Café crème, naïve façade.",
        "日本語のテキスト",
        "emoji 😀 and 👍🏽 and €100",
        "mixed: Привет, мир! αβγ 🚀x",
        "",
        "<|turn>user\nHi<turn|>\n",
        "a▁b is not a round trip, so it is not here",
    ];

    #[test]
    fn shape_of_the_tiny_vocabulary() {
        let tok = tiny();
        assert_eq!(tok.vocab_size(), 512);
        assert_eq!(tok.bos_id(), Some(2));
        for (s, id) in [("<pad>", 0), ("<eos>", 1), ("<bos>", 2), ("<unk>", 3), ("<|think|>", 98)] {
            assert_eq!(tok.token_id(s), Some(id), "{s}");
        }
        for (s, id) in [("<|channel>", 100), ("<channel|>", 101), ("<|turn>", 105), ("<turn|>", 106)] {
            assert_eq!(tok.token_id(s), Some(id), "{s}");
            assert_eq!(tok.token_str(id).as_deref(), Some(s));
        }
        assert!(tok.token_id("<0xE2>").is_some());
        assert_eq!(tok.token_str(512), None);
    }

    #[test]
    fn round_trip() {
        let tok = tiny();
        for text in TEXTS.iter().filter(|t| !t.contains('▁')) {
            let ids = tok.encode(text, false).unwrap();
            assert_eq!(tok.decode(&ids).unwrap(), *text);
        }
        // Non-ASCII goes through byte fallback: "é" is two byte tokens.
        let ids = tok.encode("é", false).unwrap();
        let strs: Vec<_> = ids.iter().map(|&i| tok.token_str(i).unwrap()).collect();
        assert_eq!(strs, ["<0xC3>", "<0xA9>"]);
        // Merges apply: " the" is one token.
        assert_eq!(tok.encode(" the", false).unwrap(), [tok.token_id("▁the").unwrap()]);
    }

    #[test]
    fn special_tokens_and_bos() {
        let tok = tiny();
        let ids = tok.encode("<|turn>user\nHi<turn|>", true).unwrap();
        assert_eq!(ids[0], 2);
        assert_eq!(ids[1], 105);
        assert_eq!(*ids.last().unwrap(), 106);
        assert_eq!(ids.iter().filter(|&&i| i == 2).count(), 1);
        let plain = tok.encode("<|turn>user\nHi<turn|>", false).unwrap();
        assert_eq!(plain, ids[1..]);
        assert_eq!(tok.encode("", true).unwrap(), [2]);
        assert!(tok.encode("", false).unwrap().is_empty());
        assert_eq!(tok.decode(&[2, 105]).unwrap(), "<bos><|turn>");
    }

    fn streamed(tok: &Tokenizer, ids: &[u32]) -> String {
        let mut stream = tok.stream();
        let mut out = String::new();
        for &id in ids {
            out += &stream.push(id).unwrap();
        }
        out + &stream.finish().unwrap()
    }

    #[test]
    fn stream_equals_decode() {
        let tok = tiny();
        for text in TEXTS {
            let ids = tok.encode(text, true).unwrap();
            assert_eq!(streamed(&tok, &ids), tok.decode(&ids).unwrap(), "{text:?}");
        }
        // Arbitrary id sequences, including invalid byte runs and long streams (trimming).
        let mut state = 12345u64;
        for len in [1, 2, 5, 40, 700] {
            let ids: Vec<u32> = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((state >> 33) % 512) as u32
                })
                .collect();
            assert_eq!(streamed(&tok, &ids), tok.decode(&ids).unwrap(), "len {len}");
        }
    }

    #[test]
    fn stream_holds_split_characters() {
        let tok = tiny();
        let ids = tok.encode("a€ x", false).unwrap(); // a <0xE2> <0x82> <0xAC> ▁ x
        let mut stream = tok.stream();
        let pieces: Vec<String> = ids.iter().map(|&id| stream.push(id).unwrap()).collect();
        assert_eq!(pieces, ["a", "", "", "", "€ ", "x"]);
        assert_eq!(stream.finish().unwrap(), "");
        // An incomplete character at the end is flushed lossily by finish.
        let mut stream = tok.stream();
        assert_eq!(stream.push(tok.token_id("<0xE2>").unwrap()).unwrap(), "");
        assert_eq!(stream.finish().unwrap(), "\u{FFFD}");
        // A leading "▁" keeps its space.
        let mut stream = tok.stream();
        assert_eq!(stream.push(tok.token_id("▁the").unwrap()).unwrap(), " the");
    }

    #[test]
    fn errors() {
        let tok = tiny();
        assert!(matches!(tok.decode(&[1, 512]), Err(Error::TokenOutOfRange { id: 512, vocab: 512 })));
        assert!(tok.stream().push(9999).is_err());
        let missing = Path::new("/nonexistent/tokenizer.json");
        let err = Tokenizer::from_file(missing).unwrap_err();
        assert!(matches!(&err, Error::Tokenizer(m) if m.contains("/nonexistent/tokenizer.json")));
        let garbage = std::env::temp_dir().join(format!("garnet-garbage-{}.json", std::process::id()));
        std::fs::write(&garbage, "{ not a tokenizer").unwrap();
        let err = Tokenizer::from_file(&garbage);
        std::fs::remove_file(&garbage).ok();
        assert!(matches!(err, Err(Error::Tokenizer(_))));
    }

    /// A small SentencePiece vocabulary: specials, byte tokens, a few pieces.
    fn tiny_spm() -> Tokenizer {
        let mut tokens: Vec<String> = ["<pad>", "<eos>", "<bos>", "<unk>", "<|turn>"].map(String::from).to_vec();
        let mut types = vec![3, 3, 3, 2, 3];
        tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
        types.extend([6; 256]);
        for piece in ["▁", "h", "i", "▁h", "▁hi", "e", "é"] {
            tokens.push(piece.into());
            types.push(1);
        }
        let scores = (0..tokens.len()).map(|i| -(i as f32)).collect();
        Tokenizer::from_vocab(tokens, scores, types, Some(2), Some(1), false).unwrap()
    }

    #[test]
    fn sentencepiece_backend() {
        let tok = tiny_spm();
        assert_eq!((tok.vocab_size(), tok.bos_id(), tok.eos_id()), (268, Some(2), Some(1)));
        assert_eq!(tiny().eos_id(), Some(1));
        let ids = tok.encode("<|turn> hi€", true).unwrap();
        let strs: Vec<_> = ids.iter().map(|&i| tok.token_str(i).unwrap()).collect();
        assert_eq!(strs, ["<bos>", "<|turn>", "▁hi", "<0xE2>", "<0x82>", "<0xAC>"]);
        assert_eq!(tok.decode(&ids).unwrap(), "<bos><|turn> hi€");
        assert_eq!(tok.token_id("▁hi"), Some(265));
        assert_eq!(streamed(&tok, &ids), tok.decode(&ids).unwrap());
        assert!(matches!(tok.decode(&[268]), Err(Error::TokenOutOfRange { id: 268, vocab: 268 })));
        let mut stream = tok.stream();
        assert_eq!(stream.push(tok.token_id("<0xE2>").unwrap()).unwrap(), "");
        assert_eq!(stream.finish().unwrap(), "\u{FFFD}");
        let bad = Tokenizer::from_vocab(vec!["<unk>".into()], vec![0.0], vec![2], Some(5), None, false);
        assert!(matches!(bad, Err(Error::Tokenizer(m)) if m.contains("bos id 5")));
        assert!(Tokenizer::from_vocab(vec![], vec![], vec![], None, None, false).is_err());
    }

    #[test]
    fn owned_stream_and_thread_safety() {
        fn check<T: Send + Sync>() {}
        check::<Tokenizer>();
        check::<StreamDecoder>();
        let tok = Arc::new(tiny());
        let ids = tok.encode("owned 😀 stream", false).unwrap();
        let mut stream: StreamDecoder = StreamDecoder::new(tok.clone());
        let mut out = String::new();
        for &id in &ids {
            out += &stream.push(id).unwrap();
        }
        assert_eq!(out + &stream.finish().unwrap(), "owned 😀 stream");
    }
}
