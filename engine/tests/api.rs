//! The generation API: streaming, stopping, cancelling, multi-turn chat, determinism.

use garnet::api::{Engine, LoadOptions, SessionOptions};
use garnet::{Message, Sampling};
use std::path::PathBuf;

fn engine() -> Engine {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/gemma4-tiny/edge_e4b_like/bf16");
    Engine::load(dir, LoadOptions::default()).unwrap()
}

fn opts() -> SessionOptions {
    SessionOptions { context: 256, prefill_chunk: 32 }
}

#[test]
fn streamed_text_is_the_decoded_ids() {
    let engine = engine();
    let tok = engine.tokenizer().unwrap();
    let mut s = engine.session(opts()).unwrap();
    let sampling = Sampling { max_new_tokens: 40, seed: 7, stop_tokens: Some(vec![]), ..Sampling::default() };
    let mut gen = s.generate("The cat sat on the", &sampling).unwrap();
    let (mut ids, mut text) = (vec![], String::new());
    for t in gen.by_ref() {
        let t = t.unwrap();
        assert!(t.logprob <= 0.0 && t.logprob.is_finite(), "{t:?}");
        ids.push(t.id);
        text.push_str(&t.text);
    }
    // The last token delivered whatever was held back: no flush needed.
    assert_eq!(gen.finish_reason(), Some(&garnet::FinishReason::Length));
    assert_eq!(ids.len(), 40);
    assert_eq!(text, tok.decode(&ids).unwrap());
    // bos + prompt + 40 generated tokens are in the conversation.
    let prompt = tok.encode("The cat sat on the", true).unwrap();
    assert_eq!(s.position(), prompt.len() + 40);
    assert_eq!(&s.tokens()[..prompt.len()], &prompt[..]);
}

#[test]
fn same_seed_same_tokens_and_greedy_matches_argmax() {
    let engine = engine();
    let run = |sampling: &Sampling| -> Vec<u32> {
        let mut s = engine.session(opts()).unwrap();
        s.generate_ids(&[2, 50, 60, 70], sampling).unwrap().map(|t| t.unwrap().id).collect()
    };
    let sampled = Sampling { max_new_tokens: 16, seed: 42, stop_tokens: Some(vec![]), ..Sampling::default() };
    assert_eq!(run(&sampled), run(&sampled));
    let greedy = Sampling { max_new_tokens: 8, stop_tokens: Some(vec![]), ..Sampling::greedy() };
    let ids = run(&greedy);
    // Greedy through the API equals argmax over logits from prefill/step.
    let mut s = engine.session(opts()).unwrap();
    let mut row = s.prefill(&[2, 50, 60, 70]).unwrap();
    for &id in &ids {
        assert_eq!(garnet::sampling::argmax(&row), id);
        row = s.step(id).unwrap();
    }
}

#[test]
fn dropping_the_iterator_cancels() {
    let engine = engine();
    let mut s = engine.session(opts()).unwrap();
    let sampling = Sampling { max_new_tokens: 100, stop_tokens: Some(vec![]), ..Sampling::greedy() };
    let taken: Vec<_> = s.generate_ids(&[2, 9, 10], &sampling).unwrap().take(3).collect();
    assert_eq!(taken.len(), 3);
    // 3 prompt tokens + 3 generated: the cache holds exactly what was consumed.
    assert_eq!(s.position(), 6);
}

#[test]
fn stop_tokens_end_generation_and_stay_in_the_conversation() {
    let engine = engine();
    let mut s = engine.session(opts()).unwrap();
    // Find what greedy decoding produces first, then make it a stop token.
    let first = s
        .generate_ids(&[2, 9, 10], &Sampling { max_new_tokens: 1, ..Sampling::greedy() })
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .id;
    let mut s = engine.session(opts()).unwrap();
    let stop = Sampling { max_new_tokens: 10, stop_tokens: Some(vec![first]), ..Sampling::greedy() };
    // The stop token is the last (here the only) token yielded; its text is not delivered.
    let got: Vec<_> = s.generate_ids(&[2, 9, 10], &stop).unwrap().map(|t| t.unwrap()).collect();
    assert_eq!(got.iter().map(|t| (t.id, t.text.as_str())).collect::<Vec<_>>(), [(first, "")]);
    assert_eq!(s.tokens(), &[2, 9, 10, first]);
}

#[test]
fn multi_turn_chat_reuses_the_conversation_it_holds() {
    let engine = engine();
    let tok = engine.tokenizer().unwrap();
    let mut s = engine.session(opts()).unwrap();
    let sampling = Sampling { max_new_tokens: 5, ..Sampling::greedy() };
    let mut conversation = vec![Message::user("hi")];
    let mut gen = s.chat(&conversation, &sampling).unwrap();
    let first: Vec<_> = gen.by_ref().map(|t| t.unwrap()).collect();
    let reply = gen.text().to_string();
    drop(gen);
    let held = s.tokens().len();
    assert_eq!(s.tokens()[0], 2, "a conversation starts with <bos>");
    conversation.push(Message::model(reply.clone()));
    conversation.push(Message::user("and then?"));
    let prompt = tok.encode(&engine.render_chat(&conversation, &Default::default()).unwrap(), false).unwrap();
    let mut gen = s.chat(&conversation, &sampling).unwrap();
    gen.by_ref().for_each(drop);
    let ran = gen.usage().prompt_tokens;
    drop(gen);
    // The session holds the rendered conversation, then the new reply; one <bos>.
    assert_eq!(s.tokens()[..prompt.len()], prompt[..]);
    assert_eq!(s.tokens().iter().filter(|&&t| t == 2).count(), 1, "one <bos> per conversation");
    // Where the template renders the first reply as the tokens sampled, only the new part runs.
    let ids: Vec<u32> = first.iter().map(|t| t.id).collect();
    if prompt[..held] == s.tokens()[..held] && tok.encode(&reply, false).unwrap() == ids {
        assert_eq!(ran, prompt.len() - held);
    } else {
        assert_eq!(ran, prompt.len());
    }
    // A conversation that does not extend the one held starts over.
    let mut gen = s.chat(&[Message::user("something else")], &sampling).unwrap();
    gen.by_ref().for_each(drop);
    let fresh =
        tok.encode(&engine.render_chat(&[Message::user("something else")], &Default::default()).unwrap(), false);
    assert_eq!(gen.usage().prompt_tokens, fresh.unwrap().len());
}

#[test]
fn missing_paths_are_named_as_given_and_causes_print_once() {
    use std::error::Error as _;
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/gemma4-tiny/edge_e4b_like/bf16");
    let missing = [
        PathBuf::from("no/such/gemma-4-E2B-it"),
        PathBuf::from("no/such/model.safetensors"),
        PathBuf::from("no/such/model.gguf"),
        fixture.join("absent.safetensors"),
    ];
    for path in missing {
        let e = Engine::load(&path, LoadOptions::default()).err().unwrap();
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("{}: ", path.display())), "{path:?}: {msg}");
        assert!(e.source().is_none(), "{msg}");
    }
    let tokenizer = PathBuf::from("no/such/tokenizer.json");
    let e = Engine::load(&fixture, LoadOptions { tokenizer: Some(tokenizer.clone()), ..Default::default() });
    let msg = e.err().unwrap().to_string();
    assert!(msg.contains(&tokenizer.display().to_string()), "{msg}");
}
