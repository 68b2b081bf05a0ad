//! `garnet::constrain`: JSON-schema, regex and Lark constraints driving generation on the tiny
//! random-weight Gemma 4 (so only the grammar can make the output well-formed), the mask checked
//! token by token against a hand-written matcher, bad grammars as errors, and the real Gemma 3
//! 270M answering in JSON (when `GARNET_GEMMA3_GGUF` names it); special tokens in grammars and a
//! forced Gemma 4 tool call.

mod common;

use garnet::logits::LogitsProcessor;
use garnet::tokenizer::Tokenizer;
use garnet::{Constraint, Engine, Error, LoadOptions, SessionOptions};
use serde_json::{json, Value};

fn tiny_engine() -> Engine {
    Engine::load(common::testdata("edge_e2b_like/bf16"), LoadOptions::default()).unwrap()
}

/// Samples from softmax(logits) at temperature 1 (`seed: Some`) or takes the argmax (`None`).
fn pick(logits: &[f32], rng: &mut Option<u64>) -> u32 {
    let Some(state) = rng else { return garnet::sampling::argmax(logits) };
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    let u = (*state >> 11) as f64 / (1u64 << 53) as f64;
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = logits.iter().map(|&l| ((l - max) as f64).exp()).collect();
    let mut target = u * weights.iter().sum::<f64>();
    for (i, w) in weights.iter().enumerate() {
        if *w > 0.0 && target < *w {
            return i as u32;
        }
        target -= w;
    }
    weights.iter().rposition(|&w| w > 0.0).unwrap() as u32
}

/// Runs `c` over a generation from `prompt`; returns the reply's ids (stop token excluded) and
/// whether it ended on a stop token. `check` sees each step's processed logits and the reply so far.
fn generate(
    engine: &Engine,
    prompt: &[u32],
    c: &mut Constraint,
    seed: Option<u64>,
    mut check: impl FnMut(&[f32], &[u32]),
) -> (Vec<u32>, bool) {
    let mut session = engine.session(SessionOptions { context: 256, ..Default::default() }).unwrap();
    let mut rng = seed.map(|s| s.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut logits = session.prefill(prompt).unwrap();
    let mut out = Vec::new();
    loop {
        c.process(&mut logits, session.tokens()).unwrap();
        check(&logits, &out);
        let id = pick(&logits, &mut rng);
        assert!(logits[id as usize].is_finite(), "picked a masked token {id}");
        c.accept(id).unwrap();
        if c.stop_tokens().contains(&id) {
            return (out, true);
        }
        out.push(id);
        if c.is_finished() {
            return (out, false);
        }
        assert!(out.len() < 200, "the grammar should have ended the reply");
        logits = session.step(id).unwrap();
    }
}

fn city_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 10},
            "age": {"type": "integer", "minimum": 0, "maximum": 150},
            "color": {"enum": ["red", "green", "blue"]},
            "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]{1,5}$"}, "maxItems": 3}
        },
        "required": ["name", "age", "color", "tags"],
        "additionalProperties": false
    })
}

/// Checks `v` against [`city_schema`] by hand.
fn validate_city(v: &Value) {
    let obj = v.as_object().expect("an object");
    assert_eq!(obj.len(), 4, "{v}");
    assert!(obj["name"].as_str().is_some_and(|s| s.chars().count() <= 10), "{v}");
    assert!(obj["age"].as_i64().is_some_and(|n| (0..=150).contains(&n)), "{v}");
    assert!(["red", "green", "blue"].contains(&obj["color"].as_str().unwrap()), "{v}");
    let tags = obj["tags"].as_array().unwrap();
    assert!(tags.len() <= 3, "{v}");
    for t in tags {
        let t = t.as_str().unwrap();
        assert!((1..=5).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_lowercase()), "{v}");
    }
}

#[test]
fn json_schema_replies_always_parse() {
    let engine = tiny_engine();
    let tok = engine.tokenizer().unwrap();
    let prompt = tok.encode("<|turn>user\nDescribe a person as JSON.<turn|>\n<|turn>model\n", true).unwrap();
    for seed in [None, Some(1), Some(2), Some(3), Some(4), Some(5)] {
        let mut c = Constraint::json_schema(tok, &city_schema()).unwrap();
        let (ids, _) = generate(&engine, &prompt, &mut c, seed, |_, _| {});
        let text = tok.decode(&ids).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("seed {seed:?}: {e}: {text}"));
        validate_city(&v);
        println!("seed {seed:?}: {text}");
    }
}

/// A prefix of a match of `[0-9]{3}-[a-z]{2,8}`, and whether it is a whole match.
fn regex_state(s: &[u8]) -> Option<bool> {
    for (i, &b) in s.iter().enumerate() {
        let ok = match i {
            0..=2 => b.is_ascii_digit(),
            3 => b == b'-',
            4..=11 => b.is_ascii_lowercase(),
            _ => false,
        };
        if !ok {
            return None;
        }
    }
    Some(s.len() >= 6)
}

#[test]
fn regex_mask_is_exact_and_output_matches() {
    let engine = tiny_engine();
    let tok = engine.tokenizer().unwrap();
    let prompt = tok.encode("Write a code:", true).unwrap();
    for seed in [None, Some(7), Some(8), Some(9)] {
        let mut c = Constraint::regex(tok, "[0-9]{3}-[a-z]{2,8}").unwrap();
        let stops = c.stop_tokens().to_vec();
        let mut steps = 0;
        let (ids, _) = generate(&engine, &prompt, &mut c, seed, |logits, out| {
            steps += 1;
            let so_far: Vec<u8> = out.iter().flat_map(|&id| tok.token_bytes(id).unwrap()).collect();
            let complete = regex_state(&so_far).expect("the output so far is a prefix");
            // Every token is allowed exactly when the hand matcher says so.
            for id in 0..tok.vocab_size() as u32 {
                let bytes = tok.token_bytes(id).unwrap();
                let want = if stops.contains(&id) {
                    complete
                } else if tok.is_special(id) || bytes.is_empty() {
                    false
                } else {
                    regex_state(&[&so_far[..], &bytes].concat()).is_some()
                };
                let got = logits[id as usize].is_finite();
                assert_eq!(
                    got,
                    want,
                    "token {id} {:?} after {:?}",
                    tok.token_str(id),
                    String::from_utf8_lossy(&so_far)
                );
            }
            assert!(logits[tok.vocab_size()..].iter().all(|l| *l == f32::NEG_INFINITY), "padding rows");
        });
        let text = tok.decode(&ids).unwrap();
        assert_eq!(regex_state(text.as_bytes()), Some(true), "{text}");
        assert!(steps >= 2);
        println!("seed {seed:?}: {text}");
    }
}

/// `add(N, N)` or `neg(N)`, N one to three digits: the Lark grammar below, parsed by hand.
fn parse_call(s: &str) -> Option<()> {
    let num = |t: &str| (1..=3).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit());
    if let Some(args) = s.strip_prefix("add(").and_then(|r| r.strip_suffix(')')) {
        let (a, b) = args.split_once(", ")?;
        return (num(a) && num(b)).then_some(());
    }
    let arg = s.strip_prefix("neg(")?.strip_suffix(')')?;
    num(arg).then_some(())
}

#[test]
fn lark_output_parses() {
    let engine = tiny_engine();
    let tok = engine.tokenizer().unwrap();
    let grammar = r#"
        start: add | neg
        add: "add(" NUM ", " NUM ")"
        neg: "neg(" NUM ")"
        NUM: /[0-9]{1,3}/
    "#;
    // Both alternatives are open at the start, nothing else is.
    let mut c = Constraint::lark(tok, grammar).unwrap();
    let mut logits = vec![0.0; tok.vocab_size()];
    c.process(&mut logits, &[]).unwrap();
    for id in 0..tok.vocab_size() as u32 {
        let bytes = tok.token_bytes(id).unwrap();
        let want =
            !bytes.is_empty() && !tok.is_special(id) && (b"add(".starts_with(&bytes) || b"neg(".starts_with(&bytes));
        assert_eq!(logits[id as usize].is_finite(), want, "{:?}", tok.token_str(id));
    }
    let prompt = tok.encode("Call a function:", true).unwrap();
    for seed in [None, Some(11), Some(12), Some(13), Some(14)] {
        let mut c = Constraint::lark(tok, grammar).unwrap();
        let (ids, _) = generate(&engine, &prompt, &mut c, seed, |_, _| {});
        let text = tok.decode(&ids).unwrap();
        assert!(parse_call(&text).is_some(), "seed {seed:?}: {text:?}");
        println!("seed {seed:?}: {text}");
    }
}

fn one_line_grammar_error<T: std::fmt::Debug>(r: garnet::Result<T>) -> String {
    let e = r.unwrap_err();
    assert!(matches!(e, Error::Grammar(_)), "{e:?}");
    let msg = e.to_string();
    assert!(!msg.contains('\n') && msg.starts_with("grammar: "), "{msg}");
    msg
}

#[test]
fn invalid_grammars_are_errors() {
    let engine = tiny_engine();
    let tok = engine.tokenizer().unwrap();
    for schema in [
        json!({"type": "no-such-type"}),
        json!({"type": "object", "properties": {"a": {"$ref": "#/definitions/missing"}}}),
        json!({"type": "string", "minLength": 5, "maxLength": 2}),
        json!({"type": "string", "pattern": "(unclosed"}),
    ] {
        let msg = one_line_grammar_error(Constraint::json_schema(tok, &schema));
        println!("{schema}: {msg}");
    }
    for rx in ["[0-9", "(a|b", "a{3,1}", "*a"] {
        let msg = one_line_grammar_error(Constraint::regex(tok, rx));
        println!("{rx}: {msg}");
    }
    for g in ["start: undefined_rule", "start: (\"a\"", "no_start: \"a\"", "", "start: /[/"] {
        let msg = one_line_grammar_error(Constraint::lark(tok, g));
        println!("{g:?}: {msg}");
    }
}

#[test]
fn accept_rejects_tokens_outside_the_grammar() {
    let engine = tiny_engine();
    let tok = engine.tokenizer().unwrap();
    let id = |s: &str| {
        let ids = tok.encode(s, false).unwrap();
        assert_eq!(ids.len(), 1, "{s}");
        ids[0]
    };
    let fresh = || Constraint::regex(tok, "[0-9]{3}-[a-z]{2,8}").unwrap();
    // A letter where a digit must come, a special token, an id past the vocabulary, a stop
    // token before the output is complete: errors, not panics.
    for bad in [id("x"), tok.token_id("<|turn>").unwrap(), tok.bos_id().unwrap(), 100_000] {
        let msg = one_line_grammar_error(fresh().accept(bad));
        println!("{bad}: {msg}");
    }
    let eot = tok.token_id("<turn|>").unwrap();
    one_line_grammar_error(fresh().accept(eot));

    // Done by hand: 123-ab, then the stop token, then nothing.
    let mut c = fresh();
    for s in ["1", "2", "3", "-", "a", "b"] {
        assert!(!c.is_complete().unwrap());
        c.accept(id(s)).unwrap();
    }
    assert!(c.is_complete().unwrap() && !c.is_finished());
    let mut logits = vec![0.0; tok.vocab_size() + 64];
    c.process(&mut logits, &[]).unwrap();
    assert!(logits[eot as usize].is_finite() && logits[tok.eos_id().unwrap() as usize].is_finite());
    assert!(logits[id("c") as usize].is_finite() && !logits[id("1") as usize].is_finite());
    assert!(logits[tok.vocab_size()..].iter().all(|l| *l == f32::NEG_INFINITY));
    c.accept(eot).unwrap();
    assert!(c.is_finished());
    one_line_grammar_error(c.accept(id("c")));

    // A grammar that ends by itself finishes without a stop token, and then allows only stops.
    let mut c = Constraint::regex(tok, "ab").unwrap().with_stop_tokens(&[eot]).unwrap();
    c.accept(id("a")).unwrap();
    c.accept(id("b")).unwrap();
    assert!(c.is_finished());
    let mut logits = vec![0.0; tok.vocab_size()];
    c.process(&mut logits, &[]).unwrap();
    let allowed: Vec<usize> = (0..logits.len()).filter(|&i| logits[i].is_finite()).collect();
    assert_eq!(allowed, [eot as usize]);
    // With its own stop token, a complete constraint allows that one only, not the vocabulary's.
    let eos = tok.eos_id().unwrap();
    let mut c = Constraint::regex(tok, "a[0-9]*").unwrap().with_stop_tokens(&[eos]).unwrap();
    c.accept(id("a")).unwrap();
    let mut logits = vec![0.0; tok.vocab_size()];
    c.process(&mut logits, &[]).unwrap();
    assert!(logits[eos as usize].is_finite() && !logits[eot as usize].is_finite());
    one_line_grammar_error(c.accept(eot));
    assert!(Constraint::regex(tok, "a").unwrap().with_stop_tokens(&[]).is_err());
    assert!(Constraint::regex(tok, "a").unwrap().with_stop_tokens(&[1 << 20]).is_err());
}

/// `token_bytes` is what decoding a token alone gives, for every text token.
fn check_token_bytes(tok: &Tokenizer) {
    let mut bytes_tokens = 0;
    for id in 0..tok.vocab_size() as u32 {
        let bytes = tok.token_bytes(id).unwrap();
        let text = tok.decode(&[id]).unwrap();
        if bytes.len() == 1 && !bytes[0].is_ascii() {
            bytes_tokens += 1;
            assert_eq!(text, "\u{FFFD}", "{id}");
        } else {
            assert_eq!(bytes, text.as_bytes(), "token {id} {:?}", tok.token_str(id));
        }
    }
    assert_eq!(bytes_tokens, 128, "<0x80>..<0xFF>");
    assert!(tok.token_bytes(tok.vocab_size() as u32).is_none());
}

#[test]
fn token_bytes_of_the_hf_tokenizer() {
    let engine = tiny_engine();
    let tok = engine.tokenizer().unwrap();
    check_token_bytes(tok);
    for s in ["<bos>", "<eos>", "<|turn>", "<turn|>", "<|channel>", "<unused0>"] {
        assert!(tok.is_special(tok.token_id(s).unwrap()), "{s}");
    }
    for s in ["▁the", "<0x41>", "a"] {
        assert!(!tok.is_special(tok.token_id(s).unwrap()), "{s}");
    }
    assert_eq!(tok.token_bytes(tok.token_id("▁the").unwrap()).unwrap(), b" the");
    assert_eq!(tok.token_bytes(tok.token_id("<0xE2>").unwrap()).unwrap(), [0xE2]);
}

/// The real Gemma 3 270M (GGUF, SentencePiece vocabulary from its metadata) answers in JSON.
#[test]
fn gemma3_answers_in_json() {
    let Ok(path) = std::env::var("GARNET_GEMMA3_GGUF") else {
        println!("skipped: GARNET_GEMMA3_GGUF unset");
        return;
    };
    let engine = Engine::load(&path, LoadOptions::default()).unwrap();
    let tok = engine.tokenizer().unwrap();
    check_token_bytes(tok);
    for s in ["<start_of_turn>", "<end_of_turn>", "<bos>", "<unused0>", "<start_of_image>", "[multimodal]"] {
        assert!(tok.is_special(tok.token_id(s).unwrap()), "{s}");
    }
    assert!(!tok.is_special(tok.token_id("\n\n").unwrap()));

    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "country": {"type": "string"},
            // A bound on the digits: a greedy 270M model otherwise writes "1000000000..." forever.
            "population": {"type": "integer", "minimum": 0, "maximum": 100000000}
        },
        "required": ["name", "country", "population"],
        "additionalProperties": false
    });
    let t = std::time::Instant::now();
    let c = Constraint::json_schema(tok, &schema).unwrap();
    println!("constraint built in {:.0} ms (token trie included)", t.elapsed().as_secs_f64() * 1e3);
    let question = "Describe the city of Paris as a JSON object with the keys name, country and population (its number of inhabitants).";
    let conversation = [garnet::Message::user(question)];
    println!("prompt: {:?}", engine.render_chat(&conversation, &Default::default()).unwrap());
    // Through the whole API: the family's chat format, the constraint as a logits processor.
    let mut session = engine.session(SessionOptions { context: 512, ..Default::default() }).unwrap();
    let greedy = |n| garnet::Sampling { max_new_tokens: n, ..garnet::Sampling::greedy() };
    let opts = garnet::GenerateOptions::default().processor(c);
    let mut gen = session.chat_with(&conversation, &greedy(120), opts).unwrap();
    let out: Vec<u32> = gen.by_ref().map(|t| t.unwrap().id).collect();
    let (reply, why, usage) = (gen.text().to_string(), gen.finish_reason().cloned(), gen.usage());
    drop(gen);
    // The same prompt unconstrained, for contrast.
    let mut free = engine.session(SessionOptions { context: 512, ..Default::default() }).unwrap();
    let mut gen = free.chat(&conversation, &greedy(60)).unwrap();
    let free_ids: Vec<u32> = gen.by_ref().map(|t| t.unwrap().id).collect();
    println!("unconstrained: {:?} {:?}", gen.text(), &free_ids[..30.min(free_ids.len())]);
    drop(gen);
    println!("token ids: {out:?}");
    println!("reply: {reply}");
    println!(
        "finish: {why:?}; {} generated tokens, decode {:.2} ms/token (mask included)",
        usage.generated_tokens,
        usage.decode_time.as_secs_f64() * 1e3 / usage.generated_tokens.max(1) as f64
    );
    assert!(matches!(why, Some(garnet::FinishReason::Constraint | garnet::FinishReason::Stop(_))), "{why:?}");
    let v: Value = serde_json::from_str(&reply).unwrap();
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 3);
    assert!(obj["name"].is_string() && obj["country"].is_string() && obj["population"].is_i64(), "{v}");
}

/// The tiny checkpoint's tokenizer with Gemma 4's tool tokens: the tiny vocabulary is Gemma 4's
/// first 512 ids with the tool markers left as `<unused42..48>`; the real tokenizer has
/// `<|tool>` .. `<|"|>` at ids 46..52, which the tiny model takes like any id.
fn tool_tokenizer() -> Tokenizer {
    const TOOL_TOKENS: [&str; 7] =
        ["<|tool>", "<tool|>", "<|tool_call>", "<tool_call|>", "<|tool_response>", "<tool_response|>", "<|\"|>"];
    let path = common::testdata("edge_e2b_like/bf16").join("tokenizer.json");
    let mut json: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let rename = |id: u64| TOOL_TOKENS.get(id.wrapping_sub(46) as usize).copied();
    for t in json["added_tokens"].as_array_mut().unwrap() {
        if let Some(name) = rename(t["id"].as_u64().unwrap()) {
            assert!(t["content"].as_str().unwrap().starts_with("<unused"));
            t["content"] = name.into();
        }
    }
    let vocab = json["model"]["vocab"].as_object_mut().unwrap();
    vocab.retain(|_, id| rename(id.as_u64().unwrap()).is_none());
    for (i, name) in TOOL_TOKENS.iter().enumerate() {
        vocab.insert(name.to_string(), (46 + i).into());
    }
    Tokenizer::from_json(&serde_json::to_vec(&json).unwrap()).unwrap()
}

fn weather_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 1, "maxLength": 12},
            "days": {"type": "integer", "minimum": 1, "maximum": 14},
            "unit": {"type": "string", "enum": ["c", "f"]}
        },
        "required": ["city", "days", "unit"]
    })
}

/// Parses `<|tool_call>call:get_weather{city:<|"|>C<|"|>,days:N,unit:<|"|>U<|"|>}<tool_call|>`
/// by hand: the city, days and unit.
fn parse_weather_call(text: &str) -> Option<(String, u32, String)> {
    const Q: &str = "<|\"|>";
    let body = text.strip_prefix("<|tool_call>call:")?.strip_suffix("}<tool_call|>")?;
    let (name, args) = body.split_once('{')?;
    if name != "get_weather" {
        return None;
    }
    let rest = args.strip_prefix("city:")?.strip_prefix(Q)?;
    let (city, rest) = rest.split_once(Q)?;
    if city.is_empty() || city.chars().count() > 12 || city.contains('<') {
        return None;
    }
    let rest = rest.strip_prefix(",days:")?;
    let (days, rest) = rest.split_once(',')?;
    if days.starts_with('0') || !days.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let days: u32 = days.parse().ok().filter(|d| (1..=14).contains(d))?;
    let unit = rest.strip_prefix("unit:")?.strip_prefix(Q)?.strip_suffix(Q)?;
    ["c", "f"].contains(&unit).then(|| (city.to_string(), days, unit.to_string()))
}

#[test]
fn forced_gemma4_tool_call() {
    let engine = tiny_engine();
    let tok = tool_tokenizer();
    let id = |s: &str| tok.token_id(s).unwrap();
    let (open, close, quote) = (id("<|tool_call>"), id("<tool_call|>"), id("<|\"|>"));
    assert_eq!((open, close, quote), (48, 49, 52));
    println!("grammar:\n{}", garnet::constrain::tool_call_grammar("get_weather", &weather_schema()).unwrap());

    // The template's prompt for one tool and a question, thinking off; the declaration cut to
    // its name, since the template's full one (about 200 tokens in this 512-token vocabulary)
    // does not fit the tiny model's 256-token context with the call.
    let q = "<|\"|>";
    let prompt = format!(
        "<|turn>system\n<|tool>declaration:get_weather{{description:{q}Forecast{q}}}<tool|><turn|>\n\
         <|turn>user\nParis, 3 days?<turn|>\n<|turn>model\n<|channel>thought\n<channel|>"
    );
    let prompt = tok.encode(&prompt, true).unwrap();
    assert!(prompt.contains(&id("<|tool>")) && prompt.contains(&quote));

    for seed in [Some(21), Some(22), Some(23), Some(24), Some(25), None] {
        let mut c = Constraint::gemma4_tool_call(&tok, "get_weather", &weather_schema()).unwrap();
        let stops = c.stop_tokens().to_vec();
        let mut steps = 0;
        let (ids, _) = generate(&engine, &prompt, &mut c, seed, |logits, out| {
            steps += 1;
            let allowed: Vec<u32> = (0..logits.len() as u32).filter(|&i| logits[i as usize].is_finite()).collect();
            if out.is_empty() {
                assert_eq!(allowed, [open], "the call opens with <|tool_call>, nothing else");
            }
            // The only special tokens ever allowed are the ones the grammar names, and the
            // stops only after <tool_call|>.
            for &a in &allowed {
                if tok.is_special(a) {
                    let ended = out.last() == Some(&close);
                    assert!([open, close, quote].contains(&a) || (ended && stops.contains(&a)), "{a} after {out:?}");
                }
            }
        });
        let text = tok.decode(&ids).unwrap();
        assert_eq!(ids.first(), Some(&open), "{ids:?}");
        assert_eq!(ids.last(), Some(&close), "{ids:?}");
        assert_eq!(ids.iter().filter(|&&i| i == quote).count(), 4, "{ids:?}");
        let call = parse_weather_call(&text).unwrap_or_else(|| panic!("seed {seed:?}: {text:?}"));
        println!("seed {seed:?}: {call:?} {text:?}\n  ids {ids:?}");
        assert_eq!(steps, ids.len(), "the grammar ends the reply after <tool_call|>");
        if seed == Some(21) {
            round_trip(&engine, &tok, &[&prompt[..], &ids].concat(), &call);
        }
    }
}

/// The rest of the round trip: the tool's response goes in as the template renders it, right
/// after the call in the same turn, and the model continues from there (free text; random weights).
fn round_trip(engine: &Engine, tok: &Tokenizer, history: &[u32], call: &(String, u32, String)) {
    let q = "<|\"|>";
    let response =
        format!("<|tool_response>response:get_weather{{temperature:15,unit:{q}{}{q}}}<tool_response|>", call.2);
    let ids = [history, &tok.encode(&response, false).unwrap()].concat();
    let mut session = engine.session(SessionOptions { context: 256, ..Default::default() }).unwrap();
    let mut logits = session.prefill(&ids).unwrap();
    let mut reply = Vec::new();
    for _ in 0..12 {
        let id = garnet::sampling::argmax(&logits);
        reply.push(id);
        logits = session.step(id).unwrap();
    }
    assert_eq!(session.tokens().len(), ids.len() + 12);
    println!("tool response {response:?} -> model continues {:?} {reply:?}", tok.decode(&reply).unwrap());
}

/// Whether the tool-call constraint takes all of `text` (tokenized as the model would see it)
/// and is then complete.
fn tool_call_accepts(tok: &Tokenizer, name: &str, schema: &Value, text: &str) -> bool {
    let mut c = Constraint::gemma4_tool_call(tok, name, schema).unwrap();
    tok.encode(text, false).unwrap().into_iter().all(|id| c.accept(id).is_ok()) && c.is_finished()
}

#[test]
fn tool_call_grammar_takes_what_the_template_renders() {
    let tok = tool_tokenizer();
    let schema = json!({
        "type": "object",
        "properties": {
            "place": {"type": "object", "properties": {"lon": {"type": "number"}, "lat": {"type": "number"}},
                      "required": ["lat", "lon"]},
            "Flags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            "days": {"type": "integer"},
            "urgent": {"type": "boolean"},
            "note": {"type": "string"}
        },
        "required": ["place", "days", "urgent"]
    });
    // Arguments with ' for the <|"|> token. Keys sorted ignoring case, as the template's
    // `dictsort`; optional ones may be left out.
    let call = |args: &str| format!("<|tool_call>call:plan{{{}}}<tool_call|>", args.replace('\'', "<|\"|>"));
    for args in [
        "days:2,Flags:['a b','c'],note:'x\ny',place:{lat:48.85,lon:-2},urgent:true",
        "days:2,place:{lat:0,lon:1e3},urgent:false",
        "days:10,Flags:[],place:{lat:1,lon:2},urgent:true",
    ] {
        assert!(tool_call_accepts(&tok, "plan", &schema, &call(args)), "{args}");
    }
    // Out of order, a key quoted, a JSON string, a required key missing, a trailing comma, three
    // flags, `<` in a string.
    for args in [
        "place:{lat:1,lon:2},days:2,urgent:true",
        "'days':2,place:{lat:1,lon:2},urgent:true",
        "days:2,note:\"x\",place:{lat:1,lon:2},urgent:true",
        "days:2,place:{lat:1},urgent:true",
        "days:2,place:{lat:1,lon:2},urgent:true,",
        "days:2,Flags:['a','b','c'],place:{lat:1,lon:2},urgent:true",
        "days:2,note:'a<b',place:{lat:1,lon:2},urgent:true",
    ] {
        assert!(!tool_call_accepts(&tok, "plan", &schema, &call(args)), "{args}");
    }
    // No call tokens, another name.
    let plain = "call:plan{days:2,place:{lat:1,lon:2},urgent:true}";
    assert!(!tool_call_accepts(&tok, "plan", &schema, plain));
    assert!(!tool_call_accepts(&tok, "plans", &schema, &call("days:2,place:{lat:1,lon:2},urgent:true")));
    let spelled = tok.encode("<|tool_call>", false).unwrap();
    assert_eq!(spelled, [48], "the tokenizer maps the marker text to the special token");
}

#[test]
fn lark_special_tokens_by_name_and_id() {
    let engine = tiny_engine();
    let tok = engine.tokenizer().unwrap();
    let (ch_open, ch_close) = (tok.token_id("<|channel>").unwrap(), tok.token_id("<channel|>").unwrap());
    // A thought, then an answer; <|channel> by name, <channel|> by id.
    let grammar = format!("start: <|channel> \"thought\\n\" /[a-z ]{{1,12}}/ <[{ch_close}]> \"ok\"");
    let prompt = tok.encode("<|turn>user\nThink first.<turn|>\n<|turn>model\n", true).unwrap();
    for seed in [None, Some(31), Some(32)] {
        let mut c = Constraint::lark(tok, &grammar).unwrap();
        let (ids, _) = generate(&engine, &prompt, &mut c, seed, |logits, out| {
            let allowed: Vec<u32> = (0..logits.len() as u32).filter(|&i| logits[i as usize].is_finite()).collect();
            if out.is_empty() {
                assert_eq!(allowed, [ch_open]);
            }
            let specials: Vec<u32> = allowed.iter().copied().filter(|&i| tok.is_special(i)).collect();
            assert!(specials.is_empty() || specials == [ch_open] || specials == [ch_close], "{specials:?}");
        });
        let text = tok.decode(&ids).unwrap();
        let thought = text.strip_prefix("<|channel>thought\n").and_then(|t| t.strip_suffix("<channel|>ok"));
        assert!(thought.is_some_and(|t| t.bytes().all(|b| b == b' ' || b.is_ascii_lowercase())), "{text:?}");
        assert_eq!(ids.iter().filter(|&&i| i == ch_close).count(), 1);
        println!("seed {seed:?}: {text:?}");
    }
    // Accepting a special token where the grammar has none is an error, not a panic.
    let mut c = Constraint::lark(tok, &grammar).unwrap();
    one_line_grammar_error(c.accept(ch_close));
    c.accept(ch_open).unwrap();
    one_line_grammar_error(c.accept(ch_open));
    // Unknown names and ids past the vocabulary are one-line errors; a tokenizer without the
    // tool tokens cannot make a tool-call constraint.
    for g in ["start: <|no_such_token|>", "start: <[100000]>", "TERM: <|channel>\nstart: TERM"] {
        let msg = one_line_grammar_error(Constraint::lark(tok, g));
        println!("{g:?}: {msg}");
    }
    let msg = one_line_grammar_error(Constraint::gemma4_tool_call(tok, "get_weather", &weather_schema()));
    println!("{msg}");
}
