//! garnet's SentencePiece tokenizer built from a GGUF vocabulary (`Tokenizer::from_vocab`) against
//! the Hugging Face `tokenizers` crate on Gemma 3's `tokenizer.json` (`Tokenizer::from_file`):
//! same vocabulary, same ids on a multilingual corpus and on random texts, lossless round trips,
//! streaming, and speed on a 200 KB text.
//!
//! Needs GARNET_GEMMA3_GGUF (e.g. gemma-3-270m-q4_k_m.gguf) and GARNET_GEMMA_TOKENIZER_JSON
//! (tools/scripts/fetch-tokenizer.sh prints one); each test is skipped when they are unset.

use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use garnet::tokenizer::Tokenizer;

/// The tokenizer metadata of a GGUF file, read by a minimal parser of the key-value section.
struct GgufVocab {
    tokens: Vec<String>,
    scores: Vec<f32>,
    types: Vec<i32>,
    bos: Option<u32>,
    eos: Option<u32>,
    add_space_prefix: bool,
    model: String,
}

/// GGUF values this reader keeps; everything else is skipped.
enum Value {
    U32(u32),
    Bool(bool),
    Str(String),
    Strs(Vec<String>),
    F32s(Vec<f32>),
    I32s(Vec<i32>),
    Other,
}

fn read_n<const N: usize>(r: &mut impl Read) -> [u8; N] {
    let mut b = [0; N];
    r.read_exact(&mut b).expect("truncated GGUF");
    b
}

fn read_u32(r: &mut impl Read) -> u32 {
    u32::from_le_bytes(read_n(r))
}

fn read_u64(r: &mut impl Read) -> u64 {
    u64::from_le_bytes(read_n(r))
}

fn read_str(r: &mut impl Read) -> String {
    let mut b = vec![0; read_u64(r) as usize];
    r.read_exact(&mut b).expect("truncated GGUF");
    String::from_utf8(b).expect("GGUF string is not UTF-8")
}

/// Size of a fixed-size GGUF scalar type.
fn scalar_size(ty: u32) -> Option<usize> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => return None,
    })
}

fn read_value(r: &mut impl Read, ty: u32) -> Value {
    match ty {
        4 => Value::U32(read_u32(r)),
        7 => Value::Bool(read_n::<1>(r)[0] != 0),
        8 => Value::Str(read_str(r)),
        9 => {
            let (elem, n) = (read_u32(r), read_u64(r) as usize);
            match elem {
                8 => Value::Strs((0..n).map(|_| read_str(r)).collect()),
                6 => Value::F32s((0..n).map(|_| f32::from_le_bytes(read_n(r))).collect()),
                5 => Value::I32s((0..n).map(|_| i32::from_le_bytes(read_n(r))).collect()),
                _ => {
                    (0..n).for_each(|_| drop(read_value(r, elem)));
                    Value::Other
                }
            }
        }
        _ => {
            let size = scalar_size(ty).unwrap_or_else(|| panic!("unknown GGUF value type {ty}"));
            std::io::copy(&mut r.take(size as u64), &mut std::io::sink()).unwrap();
            Value::Other
        }
    }
}

fn read_gguf_vocab(path: &Path) -> GgufVocab {
    let mut r = BufReader::new(std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
    assert_eq!(&read_n::<4>(&mut r), b"GGUF", "{}: not a GGUF file", path.display());
    let version = read_u32(&mut r);
    assert!(version >= 2, "GGUF version {version}");
    let (_tensors, kvs) = (read_u64(&mut r), read_u64(&mut r));
    let mut v = GgufVocab {
        tokens: vec![],
        scores: vec![],
        types: vec![],
        bos: None,
        eos: None,
        add_space_prefix: false,
        model: String::new(),
    };
    for _ in 0..kvs {
        let key = read_str(&mut r);
        let ty = read_u32(&mut r);
        match (key.as_str(), read_value(&mut r, ty)) {
            ("tokenizer.ggml.tokens", Value::Strs(t)) => v.tokens = t,
            ("tokenizer.ggml.scores", Value::F32s(s)) => v.scores = s,
            ("tokenizer.ggml.token_type", Value::I32s(t)) => v.types = t,
            ("tokenizer.ggml.bos_token_id", Value::U32(id)) => v.bos = Some(id),
            ("tokenizer.ggml.eos_token_id", Value::U32(id)) => v.eos = Some(id),
            ("tokenizer.ggml.add_space_prefix", Value::Bool(b)) => v.add_space_prefix = b,
            ("tokenizer.ggml.model", Value::Str(m)) => v.model = m,
            _ => {}
        }
    }
    v
}

fn env_path(var: &str) -> Option<String> {
    let value = std::env::var(var).ok().filter(|v| !v.is_empty());
    if value.is_none() {
        println!("skipped: {var} not set");
    }
    value
}

fn gguf() -> Option<&'static GgufVocab> {
    static V: OnceLock<GgufVocab> = OnceLock::new();
    let path = env_path("GARNET_GEMMA3_GGUF")?;
    Some(V.get_or_init(|| read_gguf_vocab(Path::new(&path))))
}

/// The HF tokenizer and the SPM tokenizer, or `None` (test skipped) if a path is not set.
fn pair() -> Option<(&'static Tokenizer, &'static Tokenizer)> {
    static HF: OnceLock<Tokenizer> = OnceLock::new();
    static SPM: OnceLock<Tokenizer> = OnceLock::new();
    let v = gguf()?;
    let json = env_path("GARNET_GEMMA_TOKENIZER_JSON")?;
    let spm = SPM.get_or_init(|| {
        let (t, s, y) = (v.tokens.clone(), v.scores.clone(), v.types.clone());
        let start = Instant::now();
        let tok = Tokenizer::from_vocab(t, s, y, v.bos, v.eos, v.add_space_prefix).unwrap();
        println!("Tokenizer::from_vocab: {:.0} ms", start.elapsed().as_secs_f64() * 1e3);
        tok
    });
    Some((HF.get_or_init(|| Tokenizer::from_file(Path::new(&json)).unwrap()), spm))
}

const TEXTS: &[&str] = &[
    "The quick brown fox jumps over the lazy dog. It's 3:45pm, isn't it?",
    "Le cœur a ses raisons que la raison ne connaît point. Où est l'hôtel ? À bientôt !",
    "Die Straße ist naß; Grüße aus München, Übermäßig schöne Bäume. ẞ",
    "Привет, мир! Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Καλημέρα κόσμε!",
    "我能吞下玻璃而不伤身体。今天天气很好，我们去公园吧。",
    "私はガラスを食べられます。それは私を傷つけません。カタカナとひらがな、漢字。",
    "나는 유리를 먹을 수 있어요. 그래도 아프지 않아요. 안녕하세요!",
    "أنا قادر على أكل الزجاج و هذا لا يؤلمني. مرحبا بالعالم",
    "मैं काँच खा सकता हूँ और मुझे उससे कोई चोट नहीं पहुंचती. नमस्ते दुनिया",
    "emoji 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 👩🏾‍💻 ❤️‍🔥 🇫🇷🇯🇵 and 🧑‍🤝‍🧑 🫠🫨",
    "fn main() {\n\tlet x = 42;\n\tif x > 0 {\n\t\tprintln!(\"{x}\");\n\t}\n}\n",
    "def f(a,  b):\n    return a  +   b    # four spaces\n\n\n\nclass  X :\n        pass\n",
    "    leading spaces and trailing   ",
    "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\nmany newlines",
    "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\ttabs",
    "                                                     fifty-three spaces",
    "Numbers: 0 1 12 123 1234 12345 3.14159 -2.5e-10 1,000,000 0x1F 0b1010 ½ ¾ ²³ ١٢٣ ૧૨",
    "Rare: 𝕳𝖊𝖑𝖑𝖔 𝒜𝒷𝒸 ꙮ 𓀀𓁐 𐍈 🜁 ⿰ \u{E000}\u{F8FF} \u{10FFFD} \u{0378} \u{1F}\u{7F} \u{0}x",
    "Combining: e\u{301} a\u{308}\u{323} Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇ and zero\u{200B}width\u{200D}joiner\u{FEFF}",
    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n",
    "<bos><start_of_turn>user\n<start_of_turn><start_of_turn>x<eos><pad><unk><mask>",
    "Partial <start_of_tur specials <start_of_turn <end_of_turn> <unused0><unused99> <0x41> [multimodal]",
    "<table><tr><td>cell</td></tr></table> <h1>Title</h1> <b>bold</b> <code>x</code> <start_of_image>",
    "Literal ▁ and ▁▁ and ▁▁▁x are written as the escape character",
    "MiXeD cAsE, snake_case, camelCase, kebab-case, SCREAMING_CASE, http://example.com/a?b=c&d=e#f",
    "",
    " ",
    "a",
    "ß",
    "👍🏽",
];

/// A deterministic random generator (64-bit LCG).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random texts from fragments, runs of whitespace and random code points (all planes).
fn random_texts(count: usize) -> Vec<String> {
    const FRAGMENTS: &[&str] = &[
        "the",
        " the",
        "and",
        "ing",
        "tion",
        "Straße",
        "ünd",
        "мир",
        "ψυχή",
        "中文",
        "日本語",
        "한국어",
        "مرحبا",
        "नमस्ते",
        "😀",
        "👨‍👩‍👧",
        "\u{200D}",
        "\u{301}",
        "<start_of_turn>",
        "<end_of_turn>",
        "<start_of",
        "_turn>",
        "<bos>",
        "<unused12>",
        "<0xE2>",
        "<b>",
        "</",
        "▁",
        "▁▁",
        "0",
        "42",
        "3.14",
        "{",
        "}",
        "(",
        ")",
        ";",
        "\"",
        "'",
        "\\",
        "-",
        "_",
        "=",
        "==",
        "->",
        "::",
        ".",
        ",",
        "!",
        "?",
        "…",
        "—",
    ];
    let mut rng = Rng(0x5eed);
    (0..count)
        .map(|_| {
            let mut s = String::new();
            for _ in 0..1 + rng.below(40) {
                match rng.below(6) {
                    0 | 1 => s += FRAGMENTS[rng.below(FRAGMENTS.len())],
                    2 => s += &[" ", "\n", "\t"][rng.below(3)].repeat(1 + rng.below(40)),
                    3 => s.push(char::from(b'a' + rng.below(26) as u8)),
                    _ => {
                        let max = [0x80, 0x800, 0x3_0000, 0x11_0000][rng.below(4)];
                        s.extend(char::from_u32(rng.below(max) as u32));
                    }
                }
            }
            s
        })
        .collect()
}

/// Every test text: the fixed corpus, this repository's sources and docs, random texts.
fn corpus() -> Vec<String> {
    let mut texts: Vec<String> = TEXTS.iter().map(|t| t.to_string()).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for dir in ["engine/src", "engine/tests", "docs", "tools/src", "kernels/src"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        texts.extend(paths.iter().filter_map(|p| std::fs::read_to_string(p).ok()));
    }
    texts.extend(random_texts(3000));
    texts
}

#[test]
fn vocabularies_agree() {
    let Some((hf, spm)) = pair() else { return };
    let v = gguf().unwrap();
    assert_eq!(v.model, "llama");
    assert_eq!((v.bos, v.eos, spm.bos_id(), spm.eos_id()), (Some(2), Some(1), Some(2), Some(1)));
    assert_eq!(spm.vocab_size(), v.tokens.len());
    let (mut same, mut spaces) = (0, 0);
    for id in 0..v.tokens.len() as u32 {
        let (ours, theirs) = (spm.token_str(id).unwrap(), hf.token_str(id).unwrap());
        assert_eq!(ours, theirs, "token {id}");
        assert_eq!(spm.token_id(&ours), Some(id), "token {id} {ours:?}");
        same += 1;
        spaces += usize::from(v.tokens[id as usize] != theirs);
    }
    // The HF file has one more added token, past the GGUF vocabulary.
    let extra: Vec<_> = (v.tokens.len() as u32..hf.vocab_size() as u32).filter_map(|id| hf.token_str(id)).collect();
    println!(
        "vocabulary: {same} tokens identical; {spaces} stored in GGUF with spaces instead of \"▁\"; \
         HF-only ids: {extra:?}"
    );
}

/// The merge rule `garnet::spm` relies on, checked against the `tokenizer.json` itself: HF's
/// merges are exactly the pairs (l, r) with l, r and l+r all tokens, ranked by the score of l+r
/// (user-defined tokens: 0) descending, then longer l, then longer r, then lower id of l+r.
#[test]
fn merge_rule_matches_tokenizer_json() {
    #[derive(serde::Deserialize)]
    struct File {
        model: Model,
    }
    #[derive(serde::Deserialize)]
    struct Model {
        vocab: std::collections::HashMap<String, u32>,
        merges: Vec<(String, String)>,
    }
    let (Some(v), Some(path)) = (gguf(), env_path("GARNET_GEMMA_TOKENIZER_JSON")) else { return };
    let file: File = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let (vocab, merges) = (file.model.vocab, file.model.merges);
    let score = |id: u32| if v.types[id as usize] == 4 { 0.0 } else { v.scores[id as usize] + 0.0 };
    let key = |(l, r): &(String, String)| {
        let id = vocab[&format!("{l}{r}")];
        (-score(id), std::cmp::Reverse(l.chars().count()), std::cmp::Reverse(r.chars().count()), id)
    };
    let keys: Vec<_> = merges.iter().map(key).collect();
    let out_of_order = keys.windows(2).filter(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less)).count();
    assert_eq!(out_of_order, 0, "merges not in the documented order");
    let mut splits = 0;
    for token in vocab.keys() {
        let cuts = token.char_indices().skip(1).map(|(i, _)| i);
        splits += cuts.filter(|&i| vocab.contains_key(&token[..i]) && vocab.contains_key(&token[i..])).count();
    }
    let distinct: std::collections::HashSet<_> = merges.iter().collect();
    assert!(merges.iter().all(|(l, r)| vocab.contains_key(l) && vocab.contains_key(r)));
    assert_eq!((splits, distinct.len()), (merges.len(), merges.len()), "merges are not all the two-token splits");
    println!("merge rule: {} merges, all in the documented order", merges.len());
}

/// Compares the two encodings of each text; returns (tokens, identical tokens, failures).
fn compare(hf: &Tokenizer, spm: &Tokenizer, texts: &[String]) -> (usize, usize, Vec<String>) {
    let (mut tokens, mut identical, mut bad) = (0usize, 0usize, Vec::new());
    for text in texts {
        let (want, got) = (hf.encode(text, true).unwrap(), spm.encode(text, true).unwrap());
        tokens += want.len();
        identical += want.iter().zip(&got).filter(|(a, b)| a == b).count();
        if want != got {
            let at = want.iter().zip(&got).position(|(a, b)| a != b).unwrap_or(want.len().min(got.len()));
            let show = |ids: &[u32]| -> Vec<String> {
                let window = &ids[at.saturating_sub(2)..(at + 3).min(ids.len())];
                window.iter().map(|&i| hf.token_str(i).unwrap()).collect()
            };
            let head: String = text.chars().take(60).collect();
            bad.push(format!("{head:?}…: at token {at}: HF {:?} SPM {:?}", show(&want), show(&got)));
        }
    }
    (tokens, identical, bad)
}

#[test]
fn encodings_agree() {
    let Some((hf, spm)) = pair() else { return };
    let texts = corpus();
    let (tokens, identical, bad) = compare(hf, spm, &texts);
    let pct = 100.0 * identical as f64 / tokens.max(1) as f64;
    let n = texts.len();
    println!("encode: {n} texts, {tokens} HF tokens, {identical} identical ({pct:.4}%), {} texts differ", bad.len());
    assert!(bad.is_empty(), "{} texts differ:\n{}", bad.len(), bad.join("\n"));
}

/// Texts made of the vocabulary itself: every ordinary token, shuffled, 64 to a text, "▁" as
/// spaces (all the scripts the vocabulary covers, and many near-tie merges).
#[test]
fn vocabulary_texts_agree() {
    let Some((hf, spm)) = pair() else { return };
    let mut pieces: Vec<String> = (0..spm.vocab_size() as u32)
        .filter_map(|id| spm.token_str(id))
        .filter(|t| !t.starts_with('<') || !t.ends_with('>'))
        .map(|t| t.replace('▁', " "))
        .collect();
    let mut rng = Rng(3);
    for i in (1..pieces.len()).rev() {
        pieces.swap(i, rng.below(i + 1));
    }
    let texts: Vec<String> = pieces.chunks(64).map(|c| c.concat()).collect();
    let (tokens, identical, bad) = compare(hf, spm, &texts);
    let pct = 100.0 * identical as f64 / tokens.max(1) as f64;
    let (n, bytes) = (texts.len(), texts.iter().map(String::len).sum::<usize>());
    println!("vocabulary texts: {n} texts, {bytes} bytes, {tokens} HF tokens, {identical} identical ({pct:.4}%)");
    assert!(bad.is_empty(), "{} texts differ:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn decodings_agree_and_round_trip() {
    let Some((hf, spm)) = pair() else { return };
    let mut round_trips = 0;
    for text in corpus() {
        let ids = spm.encode(&text, false).unwrap();
        let back = spm.decode(&ids).unwrap();
        assert_eq!(back, hf.decode(&ids).unwrap());
        if !text.contains('▁') {
            assert_eq!(back, text);
            round_trips += 1;
        }
    }
    // Random ids: invalid byte runs, control tokens, spaces.
    let mut rng = Rng(7);
    for len in 1..300 {
        let ids: Vec<u32> =
            (0..len).map(|_| rng.below(if len % 2 == 0 { 600 } else { spm.vocab_size() }) as u32).collect();
        assert_eq!(spm.decode(&ids).unwrap(), hf.decode(&ids).unwrap(), "{ids:?}");
    }
    println!("decode: {round_trips} texts round-trip; decode == HF decode on the corpus and 299 random id sequences");
}

#[test]
fn stream_reproduces_decode() {
    let Some((_, spm)) = pair() else { return };
    let mut rng = Rng(11);
    let random = (0..200).map(|_| (0..1 + rng.below(80)).map(|_| rng.below(600) as u32).collect::<Vec<_>>());
    let encoded = corpus().into_iter().take(300).map(|t| spm.encode(&t, true).unwrap());
    for ids in encoded.chain(random) {
        let mut stream = spm.stream();
        let mut out = String::new();
        for &id in &ids {
            out += &stream.push(id).unwrap();
        }
        out += &stream.finish().unwrap();
        assert_eq!(out, spm.decode(&ids).unwrap(), "{ids:?}");
    }
}

#[test]
fn long_text_speed() {
    let Some((hf, spm)) = pair() else { return };
    let mut text = String::new();
    while text.len() < 200_000 {
        TEXTS.iter().filter(|t| !t.contains('▁')).for_each(|t| text += t);
    }
    // One 50 KB word (no spaces): the merge loop over a single long piece.
    let word: String = "abcdefghijklmnopqrstuvwxyz0123456789ñ中".chars().cycle().take(50_000).collect();
    for (name, text) in [("200 KB text", text.as_str()), ("50k-char word", word.as_str())] {
        let t = Instant::now();
        let ids = spm.encode(text, true).unwrap();
        let ours = t.elapsed();
        let t = Instant::now();
        let want = hf.encode(text, true).unwrap();
        let theirs = t.elapsed();
        println!(
            "{name}: {} bytes -> {} tokens; garnet spm {:.1} ms ({:.1} MB/s), HF tokenizers {:.1} ms",
            text.len(),
            ids.len(),
            ours.as_secs_f64() * 1e3,
            text.len() as f64 / ours.as_secs_f64() / 1e6,
            theirs.as_secs_f64() * 1e3
        );
        assert!(ids == want, "{name}: encodings differ");
        assert!(spm.decode(&ids).unwrap() == format!("<bos>{text}"), "{name}: no round trip");
    }
}
