//! The generation API's contract: finish reasons, usage, stop strings across token boundaries,
//! top log-probabilities against HF's golden logits, logits processors, cancelling a prefill,
//! the engine's own thread pool, and the async stream.

use garnet::{
    BackendKind, CancelHandle, Engine, FinishReason, GenerateOptions, LoadOptions, LogitsProcessor, Precision,
    Sampling, SessionOptions, Token,
};
use safetensors::SafeTensors;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

fn tiny(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/gemma4-tiny").join(rel)
}

fn engine() -> Engine {
    Engine::load(tiny("edge_e2b_like/bf16"), LoadOptions::default()).unwrap()
}

fn opts(context: usize) -> SessionOptions {
    SessionOptions { context, prefill_chunk: 8 }
}

/// Greedy, no stop tokens, at most `n` tokens.
fn greedy(n: usize) -> Sampling {
    Sampling { max_new_tokens: n, stop_tokens: Some(vec![]), ..Sampling::greedy() }
}

const PROMPT: [u32; 5] = [2, 50, 60, 70, 80];

/// Runs a generation to its end: the tokens, the finish reason, the usage.
fn run_all(mut gen: garnet::Generation<'_>) -> (Vec<Token>, Option<FinishReason>, garnet::Usage) {
    let tokens: Vec<Token> = gen.by_ref().map(|t| t.unwrap()).collect();
    (tokens, gen.finish_reason().cloned(), gen.usage())
}

#[test]
fn length_stop_token_and_full_context_are_reported() {
    let engine = engine();
    let mut s = engine.session(opts(64)).unwrap();
    let (tokens, why, usage) = run_all(s.generate_ids(&PROMPT, &greedy(5)).unwrap());
    assert_eq!((tokens.len(), why), (5, Some(FinishReason::Length)));
    assert_eq!((usage.prompt_tokens, usage.generated_tokens), (5, 5));
    assert_eq!(s.position(), 10);
    assert!(usage.prefill_time.as_nanos() > 0 && usage.decode_time.as_nanos() > 0, "{usage:?}");

    // The greedy first token as a stop token: it is yielded, last, and named.
    let first = tokens[0].id;
    let mut s = engine.session(opts(64)).unwrap();
    let stop = Sampling { stop_tokens: Some(vec![first]), ..greedy(10) };
    let (got, why, usage) = run_all(s.generate_ids(&PROMPT, &stop).unwrap());
    assert_eq!(got.iter().map(|t| t.id).collect::<Vec<_>>(), [first]);
    assert_eq!(why, Some(FinishReason::Stop(first)));
    assert_eq!(usage.generated_tokens, 1);
    assert_eq!(s.tokens(), [&PROMPT[..], &[first]].concat());

    // A context of 16: 11 tokens fit after the prompt, whatever max_new_tokens says.
    let mut s = engine.session(opts(16)).unwrap();
    let (got, why, _) = run_all(s.generate_ids(&PROMPT, &greedy(usize::MAX)).unwrap());
    assert_eq!((got.len(), why), (11, Some(FinishReason::ContextFull)));
    assert_eq!(s.position(), 16);
    // The default stop tokens are the checkpoint's eos and the end of turn.
    let tok = engine.tokenizer().unwrap();
    assert_eq!(engine.stop_tokens(), [1, tok.token_id("<turn|>").unwrap()]);
}

#[test]
fn a_context_over_the_models_maximum_is_capped() {
    let engine = engine();
    let s = engine.session(SessionOptions { context: 8192, ..Default::default() }).unwrap();
    assert_eq!(s.context(), engine.config().max_position_embeddings);
    // The default max_new_tokens (256) is not reserved: a greedy generation fits.
    let mut s = engine.session(SessionOptions { context: 8192, ..Default::default() }).unwrap();
    assert!(s.generate("The capital of France is", &Sampling::greedy()).unwrap().next().is_some());
}

#[test]
fn cancel_stops_generation_and_prefill_within_one_chunk() {
    let engine = engine();
    let cancel = CancelHandle::new();
    let mut s = engine.session(opts(64)).unwrap();
    let mut gen = s.generate_ids_with(&PROMPT, &greedy(50), GenerateOptions::default().cancel(&cancel)).unwrap();
    let mut n = 0;
    for t in gen.by_ref() {
        t.unwrap();
        n += 1;
        if n == 3 {
            cancel.cancel();
        }
    }
    assert_eq!(n, 3);
    assert_eq!(gen.finish_reason(), Some(&FinishReason::Cancelled));

    // A 40-token prompt in chunks of 8, cancelled from the progress hook after the first chunk.
    let prompt: Vec<u32> = (0..40).map(|i| 2 + i * 7).collect();
    let cancel = CancelHandle::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook = {
        let (cancel, seen) = (cancel.clone(), seen.clone());
        move |done: usize, total: usize| {
            seen.lock().unwrap().push((done, total));
            cancel.cancel();
        }
    };
    let mut s = engine.session(opts(64)).unwrap();
    let o = GenerateOptions::default().cancel(&cancel).on_prefill(hook);
    let (tokens, why, usage) = run_all(s.generate_ids_with(&prompt, &greedy(5), o).unwrap());
    assert_eq!(*seen.lock().unwrap(), [(8, 40)]);
    assert!(tokens.is_empty());
    assert_eq!(why, Some(FinishReason::Cancelled));
    assert_eq!((s.position(), usage.prompt_tokens), (8, 8));

    // Cancelled from another thread mid-prefill: at most one chunk runs after the cancel.
    let cancel = CancelHandle::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let o = GenerateOptions::default().cancel(&cancel).on_prefill(move |done, _| {
        tx.send(done).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(if done == 8 { 200 } else { 0 }));
    });
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            assert_eq!(rx.recv().unwrap(), 8);
            cancel.cancel();
        })
    };
    let mut s = engine.session(opts(64)).unwrap();
    let (_, why, _) = run_all(s.generate_ids_with(&prompt, &greedy(5), o).unwrap());
    canceller.join().unwrap();
    assert_eq!(why, Some(FinishReason::Cancelled));
    assert_eq!(s.position(), 8);
}

/// Seeded sampling of 40 tokens, no stop tokens (the tiny model's greedy text is degenerate).
fn sampled() -> Sampling {
    Sampling { max_new_tokens: 40, seed: 7, stop_tokens: Some(vec![]), ..Sampling::default() }
}

const TEXT: &str = "The cat sat on the";

/// Texts of the tokens of a generation from `TEXT` with [`sampled`].
fn texts(engine: &Engine) -> Vec<String> {
    let mut s = engine.session(opts(64)).unwrap();
    s.generate(TEXT, &sampled()).unwrap().map(|t| t.unwrap().text).collect()
}

#[test]
fn stop_strings_spanning_tokens_stop_exactly() {
    let engine = engine();
    let pieces = texts(&engine);
    let full: String = pieces.concat();
    // A stop string made of the last character of one token's text and the first of the next.
    let text_at = |i: usize, last: bool| {
        let c = if last { pieces[i].chars().last() } else { pieces[i].chars().next() };
        c.is_some_and(|c| c.is_ascii())
    };
    let i = (2..pieces.len() - 1).find(|&i| text_at(i, true) && text_at(i + 1, false)).expect("two tokens with text");
    let tail = pieces[i].chars().last().unwrap();
    let head = pieces[i + 1].chars().next().unwrap();
    let stop = format!("{tail}{head}");
    let at = full.find(&stop).unwrap();
    // The token that completes the first occurrence ends the generation.
    let mut end = 0;
    let complete = (0..pieces.len())
        .find(|&k| {
            end += pieces[k].len();
            end >= at + stop.len()
        })
        .unwrap();

    let mut s = engine.session(opts(64)).unwrap();
    let o = GenerateOptions::default().stop_string(&stop).stop_string("\u{1}never");
    let (tokens, why, usage) = run_all(s.generate_with(TEXT, &sampled(), o).unwrap());
    let text: String = tokens.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(text, full[..at], "stop string {stop:?}");
    assert_eq!(why, Some(FinishReason::StopString(stop.clone())));
    assert_eq!(tokens.len(), complete + 1);
    assert_eq!(usage.generated_tokens, complete + 1);

    // Without a match, text held back as a possible start is delivered at the end.
    let never = format!("{}\u{1}", full.chars().last().unwrap());
    let mut s = engine.session(opts(64)).unwrap();
    let o = GenerateOptions::default().stop_string(never);
    let (tokens, why, _) = run_all(s.generate_with(TEXT, &sampled(), o).unwrap());
    assert_eq!(tokens.iter().map(|t| t.text.as_str()).collect::<String>(), full);
    assert_eq!(why, Some(FinishReason::Length));

    let mut s = engine.session(opts(64)).unwrap();
    assert!(s.generate_ids_with(&PROMPT, &greedy(4), GenerateOptions::default().stop_string("")).is_err());
}

fn golden(variant: &str) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
    let bytes = std::fs::read(tiny(variant).join("golden_f32.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let ids = |name: &str| -> Vec<u32> {
        let t = st.tensor(name).unwrap();
        t.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()) as u32).collect()
    };
    let t = st.tensor("step_logits").unwrap();
    let steps = t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    (ids("prompt_ids"), ids("gen_ids"), steps)
}

/// golden.rs's tolerance on logits; a log-probability differs by at most twice it.
const TOL: f32 = 2e-3;

#[test]
fn top_logprobs_are_the_log_softmax_of_the_golden_logits() {
    for variant in ["edge_e2b_like", "dense_31b_like"] {
        let (prompt, gen, steps) = golden(variant);
        let load = LoadOptions { backend: BackendKind::Cpu, precision: Precision::Reference, ..Default::default() };
        let engine = Engine::load(tiny(variant).join("f32"), load).unwrap();
        let v = engine.config().vocab_size;
        let mut s = engine.session(SessionOptions { context: 64, prefill_chunk: 64 }).unwrap();
        let sampling = Sampling { top_logprobs: 5, ..greedy(gen.len()) };
        let tokens: Vec<Token> = s.generate_ids(&prompt, &sampling).unwrap().map(|t| t.unwrap()).collect();
        assert_eq!(tokens.iter().map(|t| t.id).collect::<Vec<_>>(), gen, "{variant}");
        for (i, t) in tokens.iter().enumerate() {
            let row = &steps[i * v..(i + 1) * v];
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = max + row.iter().map(|&l| (l as f64 - max).exp()).sum::<f64>().ln();
            let want = |id: u32| (row[id as usize] as f64 - lse) as f32;
            let mut order: Vec<u32> = (0..v as u32).collect();
            order.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]));
            assert_eq!(t.top_logprobs.len(), 5);
            assert!((t.logprob - want(t.id)).abs() < 2.0 * TOL, "{variant} step {i}");
            for (k, &(id, lp)) in t.top_logprobs.iter().enumerate() {
                assert!((lp - want(id)).abs() < 2.0 * TOL, "{variant} step {i}: {id} {lp} vs {}", want(id));
                // The k-th most likely under the golden logits, unless two are within tolerance.
                let golden_id = order[k];
                assert!(id == golden_id || (row[id as usize] - row[golden_id as usize]).abs() < 2.0 * TOL);
            }
            assert_eq!(t.top_logprobs[0].0, t.id, "greedy picks the most likely");
        }
    }
}

/// Bans one token, records the pool's size, and finishes after `limit` accepted tokens.
struct Ban {
    id: u32,
    accepted: usize,
    limit: usize,
    threads: Arc<Mutex<Vec<usize>>>,
}

impl LogitsProcessor for Ban {
    fn process(&mut self, logits: &mut [f32], history: &[u32]) -> garnet::Result<()> {
        assert!(!history.is_empty());
        self.threads.lock().unwrap().push(rayon::current_num_threads());
        logits[self.id as usize] = f32::NEG_INFINITY;
        Ok(())
    }
    fn accept(&mut self, _token: u32) -> garnet::Result<()> {
        self.accepted += 1;
        Ok(())
    }
    fn is_finished(&self) -> bool {
        self.accepted >= self.limit
    }
}

#[test]
fn processors_edit_logits_and_can_finish() {
    let engine = engine();
    let mut s = engine.session(opts(64)).unwrap();
    let plain: Vec<Token> = s.generate_ids(&PROMPT, &greedy(1)).unwrap().map(|t| t.unwrap()).collect();
    let banned = plain[0].id;
    let threads = Arc::new(Mutex::new(Vec::new()));
    let ban = Ban { id: banned, accepted: 0, limit: 3, threads: threads.clone() };
    let mut s = engine.session(opts(64)).unwrap();
    let sampling = Sampling { top_logprobs: 2, ..greedy(10) };
    let o = GenerateOptions::default().processor(ban);
    let (tokens, why, _) = run_all(s.generate_ids_with(&PROMPT, &sampling, o).unwrap());
    assert_eq!((tokens.len(), why), (3, Some(FinishReason::Constraint)));
    assert!(tokens.iter().all(|t| t.id != banned));
    // The first token's log-probabilities are the model's, not the processed ones: the banned
    // token is still listed as the most likely.
    assert_eq!(tokens[0].top_logprobs[0].0, banned);
    assert!((tokens[0].top_logprobs[0].1 - plain[0].logprob).abs() < 1e-5);
    assert_eq!(threads.lock().unwrap().len(), 3);
}

#[test]
fn the_threads_option_runs_everything_in_the_engines_pool() {
    for n in [1, 3] {
        let load = LoadOptions { threads: Some(n), ..Default::default() };
        let engine = Engine::load(tiny("edge_e2b_like/bf16"), load).unwrap();
        assert_eq!(engine.threads(), n);
        let threads = Arc::new(Mutex::new(Vec::new()));
        let ban = Ban { id: 0, accepted: 0, limit: usize::MAX, threads: threads.clone() };
        let mut s = engine.session(opts(64)).unwrap();
        let o = GenerateOptions::default().processor(ban);
        let got = s.generate_ids_with(&PROMPT, &greedy(4), o).unwrap().count();
        assert_eq!(got, 4);
        assert_eq!(*threads.lock().unwrap(), [n; 4]);
    }
    let load = LoadOptions { threads: Some(0), ..Default::default() };
    assert!(Engine::load(tiny("edge_e2b_like/bf16"), load).is_err());
}

#[test]
fn sessions_and_generations_are_send() {
    fn send<T: Send>() {}
    send::<garnet::Session>();
    send::<garnet::Generation<'static>>();
    send::<GenerateOptions>();
    fn sync<T: Send + Sync>() {}
    sync::<Engine>();
    sync::<CancelHandle>();
}

#[cfg(feature = "async")]
mod stream {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Wake, Waker};

    /// The smallest executor: polls `fut`, parking the thread until its waker is called.
    fn block_on<F: Future>(fut: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut fut = std::pin::pin!(fut);
        loop {
            match fut.as_mut().poll(&mut cx) {
                Poll::Ready(v) => return v,
                Poll::Pending => std::thread::park(),
            }
        }
    }

    /// The next item of a stream, as a future.
    fn next<S: futures_core::Stream + Unpin>(s: &mut S) -> impl Future<Output = Option<S::Item>> + '_ {
        std::future::poll_fn(move |cx| Pin::new(&mut *s).poll_next(cx))
    }

    #[test]
    fn the_async_stream_yields_what_the_iterator_does() {
        let engine = engine();
        let mut s = engine.session(opts(64)).unwrap();
        let want: String = s.generate("Hello", &greedy(12)).unwrap().map(|t| t.unwrap().text).collect();
        let s = engine.session(opts(64)).unwrap();
        let mut stream = s.generate_stream("Hello", &greedy(12), GenerateOptions::default());
        let mut text = String::new();
        while let Some(t) = block_on(next(&mut stream)) {
            text.push_str(&t.unwrap().text);
        }
        assert_eq!(text, want);
        assert_eq!(stream.finish_reason(), Some(FinishReason::Length));
        assert_eq!(stream.usage().unwrap().generated_tokens, 12);
        let s = stream.into_session().unwrap();
        assert_eq!(s.position(), s.tokens().len());

        // Errors arrive as the stream's item; the session comes back.
        let mut stream = s.generate_stream(&"hi ".repeat(100), &greedy(1), GenerateOptions::default());
        assert!(block_on(next(&mut stream)).unwrap().is_err());
        assert!(block_on(next(&mut stream)).is_none());
        assert!(stream.into_session().is_ok());
    }
}
