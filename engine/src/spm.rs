//! SentencePiece-style tokenizer built from a bare vocabulary: token strings, scores and token
//! types, as GGUF files carry them (`tokenizer.ggml.model = "llama"`). It encodes exactly like
//! the Hugging Face `tokenizers` crate on the `tokenizer.json` converted from the same
//! SentencePiece model (Gemma's), so a GGUF checkpoint needs no `tokenizer.json`.
//!
//! Encoding, for a text:
//! 1. Control, user-defined, unknown and unused tokens written literally in the text are cut out
//!    as whole tokens, leftmost-longest first (HF "added tokens").
//! 2. Each remaining piece has its spaces escaped to "▁" (and a "▁" prepended if
//!    `add_space_prefix` and the piece starts the text or follows a special token), is split into
//!    characters, and adjacent symbols are merged greedily: always the pair whose concatenation
//!    is a token with the highest score, using a priority queue (O(n log n)). Ties are broken the
//!    way HF ranks the merges it derives from a SentencePiece model: the longer left piece, then
//!    the longer right piece, then the lower token id, then the leftmost pair.
//! 3. Characters that are not tokens fall back to their UTF-8 bytes as `<0xNN>` tokens (or to the
//!    unknown token if a byte token is missing); they never merge.
//!
//! Two GGUF conversion artefacts are undone when the vocabulary is built: user-defined tokens
//! carry score -1000 in GGUF but 0 in the SentencePiece model (their merges outrank all others),
//! and llama.cpp's converter stores their "▁" as plain spaces ("  " for "▁▁").

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use crate::{Error, Result};

/// A token's kind, as in GGUF `tokenizer.ggml.token_type` (SentencePiece piece types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenType {
    /// An ordinary piece (1; 0, llama.cpp's "undefined", is read as normal too).
    Normal,
    /// The unknown token (2).
    Unknown,
    /// A control token such as `<bos>` or `<start_of_turn>` (3).
    Control,
    /// A user-defined piece, always kept whole, such as `"\n\n"` (4).
    UserDefined,
    /// A reserved, unused piece (5).
    Unused,
    /// A byte-fallback token `<0xNN>` (6).
    Byte,
}

impl TokenType {
    /// The type of a GGUF `token_type` value, `None` if it is not one of 0..=6.
    pub fn from_gguf(value: i32) -> Option<Self> {
        Some(match value {
            0 | 1 => Self::Normal,
            2 => Self::Unknown,
            3 => Self::Control,
            4 => Self::UserDefined,
            5 => Self::Unused,
            6 => Self::Byte,
            _ => return None,
        })
    }

    /// Whether tokens of this type are matched as whole tokens when written in the text.
    fn is_literal(self) -> bool {
        matches!(self, Self::Unknown | Self::Control | Self::UserDefined | Self::Unused)
    }
}

/// The byte a byte-fallback token such as `<0xE2>` stands for (HF's `ByteFallback` rule).
pub fn byte_token_value(token: &str) -> Option<u8> {
    let hex = token.strip_prefix("<0x")?.strip_suffix('>')?;
    u8::from_str_radix(hex, 16).ok().filter(|_| hex.len() == 2)
}

/// A SentencePiece vocabulary with its encoder and decoder. Immutable and `Send + Sync`.
#[derive(Debug)]
pub struct SpmVocab {
    tokens: Vec<String>,
    ids: HashMap<String, u32>,
    /// Merge priority of each token: its score, 0 for user-defined tokens, -0 folded into 0.
    scores: Vec<f32>,
    types: Vec<TokenType>,
    /// `byte_of[id]`: the byte a byte-fallback token stands for.
    byte_of: Vec<Option<u8>>,
    /// `byte_token[b]`: the id of `<0xBB>`.
    byte_token: [Option<u32>; 256],
    unk: Option<u32>,
    literals: Trie,
    add_space_prefix: bool,
    /// BPE merge ranks of token pairs (`tokenizer.ggml.merges`); when set, only listed pairs merge,
    /// earliest first, instead of ranking by the merged token's score.
    pair_ranks: Option<HashMap<(u32, u32), u32>>,
}

impl SpmVocab {
    /// Builds the vocabulary from parallel arrays (GGUF `tokenizer.ggml.tokens`, `.scores`,
    /// `.token_type`). Fails with [`Error::Tokenizer`] if the arrays are empty or differ in
    /// length, a type is unknown, or a character could be neither byte-encoded nor made unknown.
    pub fn new(tokens: Vec<String>, scores: Vec<f32>, types: Vec<i32>, add_space_prefix: bool) -> Result<Self> {
        if tokens.is_empty() || tokens.len() != scores.len() || tokens.len() != types.len() {
            let (t, s, y) = (tokens.len(), scores.len(), types.len());
            return Err(Error::Tokenizer(format!("bad vocabulary: {t} tokens, {s} scores, {y} types")));
        }
        if u32::try_from(tokens.len()).is_err() {
            return Err(Error::Tokenizer(format!("vocabulary too large: {} tokens", tokens.len())));
        }
        let types = types
            .iter()
            .enumerate()
            .map(|(id, &t)| {
                TokenType::from_gguf(t).ok_or_else(|| Error::Tokenizer(format!("token {id}: unknown token type {t}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let tokens: Vec<String> = tokens
            .into_iter()
            .zip(&types)
            .map(|(t, &ty)| if ty == TokenType::UserDefined { t.replace(' ', "\u{2581}") } else { t })
            .collect();
        let scores = scores
            .iter()
            .zip(&types)
            .map(|(&s, &ty)| match ty {
                TokenType::UserDefined => 0.0,
                _ if s.is_nan() => f32::NEG_INFINITY,
                _ => s + 0.0, // -0.0 becomes 0.0, so that ties compare equal under total_cmp
            })
            .collect();
        let mut ids = HashMap::with_capacity(tokens.len());
        let mut literals = Trie::default();
        let mut byte_token = [None; 256];
        let mut byte_of = Vec::with_capacity(tokens.len());
        for (id, (token, ty)) in tokens.iter().zip(&types).enumerate() {
            let id = id as u32;
            ids.entry(token.clone()).or_insert(id);
            if ty.is_literal() && !token.is_empty() {
                literals.insert(token.as_bytes(), id);
            }
            let byte = byte_token_value(token);
            if let Some(b) = byte {
                byte_token[b as usize].get_or_insert(id);
            }
            byte_of.push(byte);
        }
        let unk =
            types.iter().position(|&t| t == TokenType::Unknown).map(|i| i as u32).or_else(|| ids.get("<unk>").copied());
        if unk.is_none() && byte_token.iter().any(Option::is_none) {
            return Err(Error::Tokenizer("vocabulary has neither all 256 byte tokens nor an unknown token".into()));
        }
        Ok(Self { tokens, ids, scores, types, byte_of, byte_token, unk, literals, add_space_prefix, pair_ranks: None })
    }

    /// Ranks merges by a BPE merge list (`"left right"` per entry, earliest first) instead of by
    /// scores: llama.cpp's "gemma4" tokenizer model. Entries naming unknown pieces are skipped.
    pub fn with_merges(mut self, merges: &[String]) -> Self {
        let mut ranks = HashMap::with_capacity(merges.len());
        for (rank, m) in merges.iter().enumerate() {
            let ids = m.split_once(' ').and_then(|(a, b)| Some((*self.ids.get(a)?, *self.ids.get(b)?)));
            if let Some(pair) = ids {
                ranks.entry(pair).or_insert(rank as u32);
            }
        }
        self.pair_ranks = Some(ranks);
        self
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vocabulary is empty (never true for a constructed vocabulary).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The id of a token string, if it exists (user-defined tokens are spelled with "▁").
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    /// The string of token `id`, if it exists.
    pub fn token_str(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// The type of token `id`, if it exists.
    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }

    /// Whether token `id` is a byte-fallback token `<0xNN>`.
    pub fn is_byte(&self, id: u32) -> bool {
        self.byte_of.get(id as usize).is_some_and(Option::is_some)
    }

    /// Encodes `text` (no `<bos>` is added). Never fails: unknown characters become byte tokens.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        let bytes = text.as_bytes();
        let (mut start, mut i, mut after_special) = (0, 0, true);
        while i < bytes.len() {
            if let Some((len, id)) = self.literals.longest_match(&bytes[i..]) {
                if start < i {
                    self.encode_piece(&text[start..i], after_special, &mut out);
                }
                out.push(id);
                after_special = true;
                i += len;
                start = i;
            } else {
                i += utf8_len(bytes[i]);
            }
        }
        if start < bytes.len() {
            self.encode_piece(&text[start..], after_special, &mut out);
        }
        out
    }

    /// Decodes ids to text: "▁" becomes a space, runs of byte tokens become their UTF-8 text (or
    /// one U+FFFD per byte if the run is not valid UTF-8), other tokens, control tokens
    /// included, their string. Ids outside the vocabulary are skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut out = String::new();
        let mut bytes = Vec::new();
        for &id in ids {
            let Some(token) = self.tokens.get(id as usize) else { continue };
            if let Some(b) = self.byte_of[id as usize] {
                bytes.push(b);
                continue;
            }
            flush_bytes(&mut bytes, &mut out);
            out.extend(token.chars().map(|c| if c == '\u{2581}' { ' ' } else { c }));
        }
        flush_bytes(&mut bytes, &mut out);
        out
    }

    /// Encodes a piece of text that contains no literal special token.
    fn encode_piece(&self, raw: &str, at_start: bool, out: &mut Vec<u32>) {
        let mut text = String::with_capacity(raw.len() + raw.len() / 2 + 3);
        if self.add_space_prefix && at_start {
            text.push('\u{2581}');
        }
        text.extend(raw.chars().map(|c| if c == ' ' { '\u{2581}' } else { c }));
        let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
        for (start, c) in text.char_indices() {
            let end = start + c.len_utf8();
            let n = symbols.len();
            symbols.push(Symbol {
                start,
                len: end - start,
                chars: 1,
                token: self.ids.get(&text[start..end]).copied(),
                prev: n.wrapping_sub(1),
                next: n + 1,
            });
        }
        if let Some(last) = symbols.last_mut() {
            last.next = NONE;
        }
        let mut queue = BinaryHeap::with_capacity(symbols.len());
        for left in 0..symbols.len().saturating_sub(1) {
            self.try_bigram(&text, &symbols, left, &mut queue);
        }
        while let Some(bigram) = queue.pop() {
            let left = bigram.left;
            let right = symbols[left].next;
            if symbols[left].len == 0 || right == NONE || symbols[left].len + symbols[right].len != bigram.len {
                continue; // stale: one side has merged since
            }
            let r = symbols[right];
            let l = &mut symbols[left];
            l.len += r.len;
            l.chars += r.chars;
            l.token = Some(bigram.token);
            l.next = r.next;
            symbols[right].len = 0;
            if r.next != NONE {
                symbols[r.next].prev = left;
            }
            let prev = symbols[left].prev;
            if prev != NONE {
                self.try_bigram(&text, &symbols, prev, &mut queue);
            }
            self.try_bigram(&text, &symbols, left, &mut queue);
        }
        let mut i = if symbols.is_empty() { NONE } else { 0 };
        let mut prev_unk = false;
        while i != NONE {
            let sym = &symbols[i];
            match sym.token {
                Some(id) => {
                    out.push(id);
                    prev_unk = false;
                }
                None => self.fallback(&text[sym.start..sym.start + sym.len], &mut prev_unk, out),
            }
            i = sym.next;
        }
    }

    /// Queues the merge of symbol `left` with its right neighbour, if both are tokens and so is
    /// their concatenation.
    fn try_bigram(&self, text: &str, symbols: &[Symbol], left: usize, queue: &mut BinaryHeap<Bigram>) {
        let (l, right) = (&symbols[left], symbols[left].next);
        if right == NONE || l.token.is_none() || symbols[right].token.is_none() {
            return;
        }
        let r = &symbols[right];
        let len = l.len + r.len;
        if let Some(&token) = self.ids.get(&text[l.start..l.start + len]) {
            let score = match (&self.pair_ranks, l.token.zip(r.token)) {
                (Some(ranks), Some(pair)) => match ranks.get(&pair) {
                    Some(&rank) => -(rank as f32), // exact: ranks stay below 2^24
                    None => return,
                },
                _ => self.scores[token as usize],
            };
            queue.push(Bigram { score, left_chars: l.chars, right_chars: r.chars, token, left, len });
        }
    }

    /// Emits a character that is not a token: its byte tokens, or the unknown token (consecutive
    /// unknown characters share one, like HF's `fuse_unk`).
    fn fallback(&self, ch: &str, prev_unk: &mut bool, out: &mut Vec<u32>) {
        let bytes: Option<Vec<u32>> = ch.bytes().map(|b| self.byte_token[b as usize]).collect();
        if let Some(ids) = &bytes {
            out.extend(ids);
        } else if !*prev_unk {
            out.extend(self.unk); // SpmVocab::new checked that it exists
        }
        *prev_unk = bytes.is_none();
    }
}

/// Appends a run of decoded bytes to `out`, HF `ByteFallback` style, and clears it.
fn flush_bytes(bytes: &mut Vec<u8>, out: &mut String) {
    match std::str::from_utf8(bytes) {
        Ok(s) => out.push_str(s),
        Err(_) => out.extend(bytes.iter().map(|_| '\u{FFFD}')),
    }
    bytes.clear();
}

/// Length of the UTF-8 character starting with byte `b`.
fn utf8_len(b: u8) -> usize {
    match b {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    }
}

const NONE: usize = usize::MAX;

/// A span of the escaped text during merging; a doubly linked list over `Vec<Symbol>`.
#[derive(Debug, Clone, Copy)]
struct Symbol {
    start: usize,
    /// Bytes; 0 once merged into its left neighbour.
    len: usize,
    chars: u32,
    /// `None` for a character that is not a token (it will be byte-encoded, and never merges).
    token: Option<u32>,
    prev: usize,
    next: usize,
}

/// A candidate merge of symbol `left` with its right neighbour into `token`.
#[derive(Debug, PartialEq)]
struct Bigram {
    score: f32,
    left_chars: u32,
    right_chars: u32,
    token: u32,
    left: usize,
    /// Bytes of the merged text, to detect stale entries.
    len: usize,
}

impl Eq for Bigram {}

impl Ord for Bigram {
    /// Greater pops first: higher score, longer left piece, longer right piece, lower token id,
    /// leftmost. This is the order of the merges HF derives from a SentencePiece model.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then(self.left_chars.cmp(&other.left_chars))
            .then(self.right_chars.cmp(&other.right_chars))
            .then(other.token.cmp(&self.token))
            .then(other.left.cmp(&self.left))
    }
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A byte trie over the literal special tokens, for leftmost-longest matching. Node 0 is the root.
#[derive(Debug, Default)]
struct Trie {
    nodes: Vec<TrieNode>,
}

/// Edges sorted by byte, and the token ending here.
#[derive(Debug, Default)]
struct TrieNode {
    edges: Vec<(u8, u32)>,
    token: Option<u32>,
}

impl Trie {
    fn insert(&mut self, key: &[u8], id: u32) {
        if self.nodes.is_empty() {
            self.nodes.push(TrieNode::default());
        }
        let mut node = 0;
        for &b in key {
            node = match self.nodes[node].edges.binary_search_by_key(&b, |e| e.0) {
                Ok(i) => self.nodes[node].edges[i].1 as usize,
                Err(i) => {
                    let child = self.nodes.len();
                    self.nodes[node].edges.insert(i, (b, child as u32));
                    self.nodes.push(TrieNode::default());
                    child
                }
            };
        }
        self.nodes[node].token.get_or_insert(id);
    }

    /// The longest key that `text` starts with: its length and token.
    fn longest_match(&self, text: &[u8]) -> Option<(usize, u32)> {
        let (mut node, mut best) = (0, None);
        for (i, &b) in text.iter().enumerate() {
            let edges = &self.nodes.get(node)?.edges;
            match edges.binary_search_by_key(&b, |e| e.0) {
                Ok(e) => node = edges[e].1 as usize,
                Err(_) => break,
            }
            if let Some(id) = self.nodes[node].token {
                best = Some((i + 1, id));
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny vocabulary: specials, all byte tokens, then pieces with descending scores.
    fn vocab(add_space_prefix: bool) -> SpmVocab {
        // "  " is "▁▁" as llama.cpp's converter stores it.
        let specials = [("<pad>", 3), ("<eos>", 3), ("<bos>", 3), ("<unk>", 2), ("<start_of_turn>", 3)];
        let specials = specials.iter().chain(&[("<start>", 3), ("\n", 4), ("  ", 4)]);
        let mut entries: Vec<(String, f32, i32)> = specials.map(|&(t, y)| (t.to_string(), -1000.0, y)).collect();
        entries.extend((0..=255u8).map(|b| (format!("<0x{b:02X}>"), 0.0, 6)));
        let pieces = [("▁", -1.0), ("a", -2.0), ("b", -3.0), ("c", -4.0), ("h", -5.0), ("e", -6.0), ("t", -7.0)];
        let merged = [("ab", -20.0), ("bc", -10.0), ("▁t", -8.0), ("he", -9.0), ("▁the", -11.0), ("aa", -14.0)];
        let more = [("é", -12.0), ("x", -13.0), ("ax", -40.0)];
        entries.extend(pieces.iter().chain(&merged).chain(&more).map(|&(p, s)| (p.to_string(), s, 1)));
        let (mut tokens, mut scores, mut types) = (vec![], vec![], vec![]);
        for (t, s, y) in entries {
            tokens.push(t);
            scores.push(s);
            types.push(y);
        }
        SpmVocab::new(tokens, scores, types, add_space_prefix).unwrap()
    }

    fn pieces(v: &SpmVocab, text: &str) -> Vec<String> {
        v.encode(text).iter().map(|&id| v.token_str(id).unwrap().to_owned()).collect()
    }

    #[test]
    fn merges_follow_scores() {
        let v = vocab(false);
        // "bc" (-10) beats "ab" (-20).
        assert_eq!(pieces(&v, "abc"), ["a", "bc"]);
        assert_eq!(pieces(&v, "abab"), ["ab", "ab"]);
        // "▁t" (-8) merges before "he" (-9), then "▁t" + "he" = "▁the".
        assert_eq!(pieces(&v, " the"), ["▁the"]);
        assert_eq!(pieces(&v, "the the"), ["t", "he", "▁the"]);
        // Equal pairs: leftmost first.
        assert_eq!(pieces(&v, "aaa"), ["aa", "a"]);
        assert_eq!(pieces(&v, "axax"), ["ax", "ax"]);
        // Equal scores, different tokens: the lower id first ("cd", then "bcd"), as HF ranks them.
        let tokens = ["<unk>", "a", "b", "c", "d", "cd", "ab", "bcd"].map(String::from).to_vec();
        let scores = vec![0.0, -1.0, -2.0, -3.0, -4.0, -5.0, -5.0, -0.5];
        let v = SpmVocab::new(tokens, scores, vec![2, 1, 1, 1, 1, 1, 1, 1], false).unwrap();
        assert_eq!(v.encode("abcd"), [1, 7]);
    }

    #[test]
    fn user_defined_spaces_outrank_everything() {
        let v = vocab(false);
        assert_eq!(v.token_str(7), Some("\u{2581}\u{2581}"));
        assert_eq!(v.token_id("\u{2581}\u{2581}"), Some(7));
        assert_eq!(pieces(&v, "  the"), ["▁▁", "t", "he"]);
        assert_eq!(pieces(&v, "   the"), ["▁▁", "▁the"]);
        assert_eq!(v.decode(&v.encode("a  b")), "a  b");
    }

    #[test]
    fn byte_fallback() {
        let v = vocab(false);
        assert_eq!(pieces(&v, "é€"), ["é", "<0xE2>", "<0x82>", "<0xAC>"]);
        assert_eq!(v.decode(&v.encode("aé€b")), "aé€b");
        // A lone continuation byte is invalid UTF-8: one U+FFFD per byte of the run.
        let e2 = v.token_id("<0xE2>").unwrap();
        let x82 = v.token_id("<0x82>").unwrap();
        assert_eq!(v.decode(&[e2, x82, v.token_id("a").unwrap()]), "\u{FFFD}\u{FFFD}a");
        assert!(v.is_byte(e2) && !v.is_byte(v.token_id("a").unwrap()));
    }

    #[test]
    fn unknown_without_byte_tokens() {
        let tokens = vec!["<unk>".to_string(), "a".into()];
        let v = SpmVocab::new(tokens.clone(), vec![0.0, -1.0], vec![2, 1], false).unwrap();
        assert_eq!(v.encode("a€€a"), [1, 0, 1]);
        let no_unk = vec!["<x>".to_string(), "a".into()];
        assert!(SpmVocab::new(no_unk, vec![0.0, -1.0], vec![1, 1], false).is_err());
        assert!(SpmVocab::new(tokens.clone(), vec![0.0], vec![2, 1], false).is_err());
        assert!(SpmVocab::new(tokens, vec![0.0, -1.0], vec![2, 9], false).is_err());
    }

    #[test]
    fn special_tokens_are_whole() {
        let v = vocab(false);
        let ids = v.encode("<start_of_turn>ab\n<start><bos>");
        assert_eq!(pieces(&v, "<start_of_turn>ab\n<start><bos>"), ["<start_of_turn>", "ab", "\n", "<start>", "<bos>"]);
        assert_eq!(v.decode(&ids), "<start_of_turn>ab\n<start><bos>");
        // A prefix of a special token is plain text.
        assert_eq!(pieces(&v, "<start_of")[0], "<0x3C>");
        assert_eq!(v.decode(&v.encode("<start_of")), "<start_of");
    }

    #[test]
    fn space_prefix() {
        let v = vocab(true);
        assert_eq!(pieces(&v, "the<bos>the"), ["▁the", "<bos>", "▁the"]);
        assert_eq!(v.decode(&v.encode("the")), " the");
        assert!(v.encode("").is_empty());
        assert!(vocab(false).encode("").is_empty());
    }
}
