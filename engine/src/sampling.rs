//! Choosing the next token from logits: greedy or stochastic (top-k, temperature, top-p, min-p),
//! with a CTRL-style repetition penalty and a seeded, platform-independent PRNG.
//!
//! The transforms run in llama.cpp's order: repetition penalty, then either argmax
//! (temperature 0) or top-k → temperature → softmax → top-p → min-p → renormalise → draw.

use crate::{Error, Result};

/// Sampling parameters for one generation.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    /// Softmax temperature; 0 means greedy (argmax).
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 turns it off.
    pub top_k: usize,
    /// Nucleus sampling: keep the smallest set of most likely tokens whose mass reaches `top_p`,
    /// in (0, 1]; 1 turns it off.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one, in [0, 1); 0 turns it off.
    pub min_p: f32,
    /// CTRL-style penalty on tokens already in the history (> 0); 1 turns it off.
    pub repetition_penalty: f32,
    /// How many of the most recent tokens the repetition penalty looks at (llama.cpp's
    /// `repeat_last_n`); 0 means the whole context.
    pub repeat_last_n: usize,
    /// Seed of the sampler's PRNG; the same seed and inputs give the same tokens everywhere.
    pub seed: u64,
    /// Maximum number of tokens to generate.
    pub max_new_tokens: usize,
    /// Token ids that end generation; `None` uses the model's defaults
    /// ([`crate::Engine::stop_tokens`]: extend those to add ids).
    pub stop_tokens: Option<Vec<u32>>,
    /// How many of the most likely tokens each generated [`crate::Token`] lists with their
    /// log-probabilities under the model's distribution; 0 lists none.
    pub top_logprobs: usize,
}

impl Default for Sampling {
    /// Gemma's recommended settings: temperature 1.0, top-k 64, top-p 0.95, no min-p, no
    /// repetition penalty; seed 0, at most 256 new tokens, the model's stop tokens, no top
    /// log-probabilities.
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 64,
            top_p: 0.95,
            min_p: 0.0,
            repetition_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0,
            max_new_tokens: 256,
            stop_tokens: None,
            top_logprobs: 0,
        }
    }
}

impl Sampling {
    /// Deterministic argmax decoding: temperature 0 and every other transform off.
    pub fn greedy() -> Self {
        Self { temperature: 0.0, top_k: 0, top_p: 1.0, ..Self::default() }
    }

    /// Checks the parameters; [`Error::Invalid`] names the first bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f32| Err(Error::Invalid(format!("sampling: {what}, got {v}")));
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad("temperature must be finite and >= 0", self.temperature);
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p must be in (0, 1]", self.top_p);
        }
        if !(self.min_p >= 0.0 && self.min_p < 1.0) {
            return bad("min_p must be in [0, 1)", self.min_p);
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return bad("repetition_penalty must be finite and > 0", self.repetition_penalty);
        }
        Ok(())
    }
}

/// splitmix64: tiny, fast, and identical on every platform.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// A candidate token: its id and, depending on the stage, its logit or its probability.
#[derive(Clone, Copy, Debug)]
struct Cand {
    id: u32,
    v: f32,
}

/// Descending by value, ties by ascending id: a total order, so results never depend on the
/// sort algorithm.
fn by_value_desc(a: &Cand, b: &Cand) -> std::cmp::Ordering {
    b.v.total_cmp(&a.v).then(a.id.cmp(&b.id))
}

/// Picks tokens according to a [`Sampling`]. Holds the PRNG state and scratch buffers, so after
/// the first call [`sample`](Self::sample) does not allocate (for a fixed vocabulary size).
#[derive(Clone, Debug)]
pub struct Sampler {
    cfg: Sampling,
    rng: SplitMix64,
    /// Logits after the repetition penalty.
    work: Vec<f32>,
    /// `seen[id]`: already penalised in this call (cleared before returning).
    seen: Vec<bool>,
    cands: Vec<Cand>,
}

impl Sampler {
    /// Validates `s` and seeds the PRNG from `s.seed`.
    pub fn new(s: &Sampling) -> Result<Self> {
        s.validate()?;
        Ok(Self { cfg: s.clone(), rng: SplitMix64(s.seed), work: Vec::new(), seen: Vec::new(), cands: Vec::new() })
    }

    /// Chooses the next token from `logits` (one per vocabulary id), penalising ids in `history`.
    /// Returns the id and its log-probability under the raw `logits` (the model's own
    /// distribution, before any transform). NaN or +inf logits, all -inf logits, empty logits and
    /// history ids outside the vocabulary are errors.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> Result<(u32, f32)> {
        let max = raw_max(logits)?;
        let id = self.pick(logits, history)?;
        Ok((id, log_softmax_at(logits, max, id as usize)))
    }

    /// Chooses the next token like [`Sampler::sample`] without computing its log-probability.
    pub fn pick(&mut self, logits: &[f32], history: &[u32]) -> Result<u32> {
        raw_max(logits)?;
        self.penalise(logits, history)?;
        Ok(if self.cfg.temperature == 0.0 { argmax(&self.work) } else { self.draw() })
    }

    /// Copies `logits` into `work` and applies the repetition penalty once per distinct id.
    fn penalise(&mut self, logits: &[f32], history: &[u32]) -> Result<()> {
        self.work.clear();
        self.work.extend_from_slice(logits);
        let penalty = self.cfg.repetition_penalty;
        if penalty == 1.0 || history.is_empty() {
            return Ok(());
        }
        let n = logits.len();
        if let Some(&id) = history.iter().find(|&&id| id as usize >= n) {
            return Err(Error::TokenOutOfRange { id, vocab: n });
        }
        self.seen.resize(n, false);
        for &id in history {
            let i = id as usize;
            if !std::mem::replace(&mut self.seen[i], true) {
                let l = &mut self.work[i];
                *l = if *l > 0.0 { *l / penalty } else { *l * penalty };
            }
        }
        for &id in history {
            self.seen[id as usize] = false;
        }
        Ok(())
    }

    /// The stochastic path over `work`: top-k → temperature → softmax → top-p → min-p → draw.
    fn draw(&mut self) -> u32 {
        let cfg = &self.cfg;
        let cands = &mut self.cands;
        cands.clear();
        cands.extend(self.work.iter().enumerate().map(|(i, &v)| Cand { id: i as u32, v }));

        // top-k; afterwards `sorted` says whether `cands` is in descending order.
        let mut sorted = false;
        if cfg.top_k > 0 && cfg.top_k < cands.len() {
            cands.select_nth_unstable_by(cfg.top_k - 1, by_value_desc);
            cands.truncate(cfg.top_k);
            cands.sort_unstable_by(by_value_desc);
            sorted = true;
        }

        // temperature + softmax (unnormalised: probabilities relative to the maximum).
        let max = cands.iter().map(|c| c.v).fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0.0f64;
        for c in cands.iter_mut() {
            // Divide rather than multiply by 1/t, which overflows to inf for tiny temperatures.
            c.v = ((c.v - max) / cfg.temperature).exp();
            total += c.v as f64;
        }

        // top-p: the smallest sorted prefix whose mass reaches top_p. Without top-k, sort only
        // as large a head of the distribution as needed, growing it 8x at a time.
        if cfg.top_p < 1.0 {
            let target = cfg.top_p as f64 * total;
            let n = cands.len();
            let mut k = if sorted { n } else { n.min(256) };
            loop {
                if !sorted {
                    if k < n {
                        cands.select_nth_unstable_by(k - 1, by_value_desc);
                    }
                    cands[..k].sort_unstable_by(by_value_desc);
                }
                let mut mass = 0.0f64;
                let end = cands[..k].iter().position(|c| {
                    mass += c.v as f64;
                    mass >= target
                });
                match end {
                    Some(i) => break cands.truncate(i + 1),
                    None if k == n => break, // rounding: keep everything
                    None => k = n.min(k * 8),
                }
            }
        }

        // min-p: relative to the most likely token, whose relative probability is 1.
        if cfg.min_p > 0.0 {
            let p_max = cands.iter().map(|c| c.v).fold(0.0f32, f32::max);
            let threshold = cfg.min_p * p_max;
            cands.retain(|c| c.v >= threshold);
        }

        // Renormalise implicitly: draw in [0, remaining mass).
        let mass: f64 = cands.iter().map(|c| c.v as f64).sum();
        let r = self.rng.next_f64() * mass;
        let mut acc = 0.0f64;
        for c in cands.iter() {
            acc += c.v as f64;
            if r < acc {
                return c.id;
            }
        }
        // Rounding left r at the very top: take the last token with nonzero probability.
        cands.iter().rev().find(|c| c.v > 0.0).unwrap_or(&cands[0]).id
    }
}

/// Largest raw logit, rejecting empty input, NaN, +inf and all -inf.
fn raw_max(logits: &[f32]) -> Result<f32> {
    if logits.is_empty() {
        return Err(Error::Invalid("sampling: empty logits".into()));
    }
    let mut max = f32::NEG_INFINITY;
    for (i, &l) in logits.iter().enumerate() {
        if l.is_nan() || l == f32::INFINITY {
            return Err(Error::Invalid(format!("sampling: logit {i} is {l}")));
        }
        max = max.max(l);
    }
    if max == f32::NEG_INFINITY {
        return Err(Error::Invalid("sampling: every logit is -inf".into()));
    }
    Ok(max)
}

/// Index of the largest value (greedy decoding); ties go to the lowest index and NaNs never win.
/// An empty slice, or one with nothing above -inf, gives 0.
pub fn argmax(values: &[f32]) -> u32 {
    let (mut best, mut best_v) = (0, f32::NEG_INFINITY);
    for (i, &v) in values.iter().enumerate() {
        if v > best_v {
            (best, best_v) = (i, v);
        }
    }
    best as u32
}

/// Log-probabilities under `logits` (the log-softmax): that of token `id`, and the `top` most
/// likely tokens with theirs, most likely first (ties by ascending id). The logits must be
/// finite or -inf with at least one finite value (the engine checks the model's output).
pub fn logprobs(logits: &[f32], id: u32, top: usize) -> (f32, Vec<(u32, f32)>) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| (l - max).exp() as f64).sum();
    let lse = max as f64 + sum.ln();
    let lp = |l: f32| (l as f64 - lse) as f32;
    let chosen = logits.get(id as usize).map_or(f32::NEG_INFINITY, |&l| lp(l));
    let top = top.min(logits.len());
    if top == 0 {
        return (chosen, Vec::new());
    }
    let mut cands: Vec<Cand> = logits.iter().enumerate().map(|(i, &v)| Cand { id: i as u32, v }).collect();
    if top < cands.len() {
        cands.select_nth_unstable_by(top - 1, by_value_desc);
        cands.truncate(top);
    }
    cands.sort_unstable_by(by_value_desc);
    (chosen, cands.iter().map(|c| (c.id, lp(c.v))).collect())
}

/// `log_softmax(logits)[i]`, given `max = max(logits)`; exponentials in f32, the sum in f64.
fn log_softmax_at(logits: &[f32], max: f32, i: usize) -> f32 {
    let sum: f64 = logits.iter().map(|&l| (l - max).exp() as f64).sum();
    ((logits[i] - max) as f64 - sum.ln()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGITS: [f32; 6] = [1.0, 2.5, 0.3, 2.4, -1.0, 0.0];

    fn sampler(s: Sampling) -> Sampler {
        Sampler::new(&s).unwrap()
    }

    fn stochastic() -> Sampling {
        Sampling { top_k: 0, top_p: 1.0, ..Sampling::default() }
    }

    fn draws(s: &mut Sampler, logits: &[f32], n: usize) -> Vec<u32> {
        (0..n).map(|_| s.sample(logits, &[]).unwrap().0).collect()
    }

    #[test]
    fn greedy_picks_argmax_lowest_on_ties() {
        let mut s = sampler(Sampling::greedy());
        assert_eq!(s.sample(&LOGITS, &[]).unwrap().0, 1);
        assert_eq!(s.sample(&[0.5, 3.0, 3.0, 1.0], &[]).unwrap().0, 1);
        assert_eq!(s.sample(&[f32::NEG_INFINITY, -5.0], &[]).unwrap().0, 1);
    }

    #[test]
    fn seed_determinism() {
        let run = |seed| draws(&mut sampler(Sampling { seed, ..stochastic() }), &LOGITS, 200);
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        // Pinned values: the PRNG must not change across platforms or releases.
        assert_eq!(SplitMix64(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn top_k_one_and_tiny_top_p_are_greedy() {
        for temperature in [0.1, 1.0, 5.0] {
            let mut k1 = sampler(Sampling { temperature, top_k: 1, top_p: 1.0, ..Sampling::default() });
            assert!(draws(&mut k1, &LOGITS, 100).iter().all(|&id| id == 1));
            let mut p0 = sampler(Sampling { temperature, top_k: 0, top_p: 1e-6, ..Sampling::default() });
            assert!(draws(&mut p0, &LOGITS, 100).iter().all(|&id| id == 1));
        }
        // Ties resolve to the lowest id here too.
        let mut k1 = sampler(Sampling { top_k: 1, ..Sampling::default() });
        assert_eq!(k1.sample(&[0.0, 4.0, 4.0], &[]).unwrap().0, 1);
        // A subnormal temperature is still argmax, not NaN.
        let mut cold = sampler(Sampling { temperature: 1e-45, ..stochastic() });
        assert!(draws(&mut cold, &LOGITS, 20).iter().all(|&id| id == 1));
    }

    #[test]
    fn top_k_and_top_p_restrict_support() {
        let mut k2 = sampler(Sampling { top_k: 2, top_p: 1.0, ..Sampling::default() });
        assert!(draws(&mut k2, &LOGITS, 500).iter().all(|&id| id == 1 || id == 3));
        // p = [0.5, 0.3, 0.2]: top_p 0.75 keeps the first two.
        let logits = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
        let mut p = sampler(Sampling { top_k: 0, top_p: 0.75, ..Sampling::default() });
        let got = draws(&mut p, &logits, 2000);
        assert!(got.iter().all(|&id| id != 2) && got.contains(&1));
    }

    #[test]
    fn min_p_filters() {
        // p ∝ [1, 0.5, 0.09]: min_p 0.1 drops id 2 (0.09 < 0.1 * 1), keeps id 1.
        let logits = [0.0, 0.5f32.ln(), 0.09f32.ln()];
        let mut s = sampler(Sampling { min_p: 0.1, ..stochastic() });
        let got = draws(&mut s, &logits, 3000);
        assert!(!got.contains(&2) && got.contains(&1) && got.contains(&0));
        let mut off = sampler(stochastic());
        assert!(draws(&mut off, &logits, 3000).contains(&2));
    }

    #[test]
    fn repetition_penalty_changes_argmax() {
        let logits = [2.0, 1.5, -1.0];
        let mut s = sampler(Sampling { repetition_penalty: 1.5, ..Sampling::greedy() });
        // 2.0 / 1.5 = 1.33 < 1.5: id 1 wins; the repeated id counts once.
        assert_eq!(s.sample(&logits, &[0, 0, 0]).unwrap().0, 1);
        // Negative logits are multiplied: -1.0 → -1.5 stays below; id 0 wins without history.
        assert_eq!(s.sample(&logits, &[2]).unwrap().0, 0);
        // The scratch marks were cleared: a second call without history is unaffected.
        assert_eq!(s.sample(&logits, &[]).unwrap().0, 0);
        assert!(s.sample(&logits, &[3]).is_err());
    }

    #[test]
    fn frequencies_match_softmax() {
        let mut s = sampler(Sampling { seed: 42, ..stochastic() });
        let n = 20_000;
        let mut counts = [0usize; LOGITS.len()];
        for id in draws(&mut s, &LOGITS, n) {
            counts[id as usize] += 1;
        }
        let z: f64 = LOGITS.iter().map(|&l| (l as f64).exp()).sum();
        for (i, &c) in counts.iter().enumerate() {
            let p = (LOGITS[i] as f64).exp() / z;
            let f = c as f64 / n as f64;
            assert!((f - p).abs() < 0.02, "id {i}: frequency {f}, softmax {p}");
        }
    }

    #[test]
    fn logprob_is_raw_log_softmax() {
        let z: f64 = LOGITS.iter().map(|&l| (l as f64).exp()).sum();
        let settings = [
            Sampling::greedy(),
            Sampling { repetition_penalty: 3.0, ..Sampling::greedy() },
            Sampling { temperature: 0.3, top_k: 2, ..Sampling::default() },
        ];
        for cfg in settings {
            let mut s = sampler(cfg);
            for _ in 0..20 {
                let (id, lp) = s.sample(&LOGITS, &[1]).unwrap();
                let want = LOGITS[id as usize] as f64 - z.ln();
                assert!((lp as f64 - want).abs() < 1e-5, "{lp} vs {want}");
            }
        }
    }

    #[test]
    fn top_logprobs_are_the_largest_log_softmax_values() {
        let z: f64 = LOGITS.iter().map(|&l| (l as f64).exp()).sum();
        let (lp, top) = logprobs(&LOGITS, 3, 3);
        assert!((lp as f64 - (2.4 - z.ln())).abs() < 1e-5);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), [1, 3, 0]);
        for (id, l) in top {
            assert!((l as f64 - (LOGITS[id as usize] as f64 - z.ln())).abs() < 1e-5);
        }
        assert_eq!(logprobs(&LOGITS, 0, 100).1.len(), LOGITS.len());
        assert!(logprobs(&LOGITS, 0, 0).1.is_empty());
    }

    #[test]
    fn validate_rejects_bad_values() {
        assert!(Sampling::default().validate().is_ok());
        assert!(Sampling::greedy().validate().is_ok());
        let bad = [
            Sampling { temperature: f32::NAN, ..Sampling::default() },
            Sampling { temperature: -0.1, ..Sampling::default() },
            Sampling { top_p: 0.0, ..Sampling::default() },
            Sampling { top_p: 1.01, ..Sampling::default() },
            Sampling { top_p: f32::NAN, ..Sampling::default() },
            Sampling { min_p: 1.0, ..Sampling::default() },
            Sampling { min_p: -0.01, ..Sampling::default() },
            Sampling { repetition_penalty: 0.0, ..Sampling::default() },
            Sampling { repetition_penalty: f32::NAN, ..Sampling::default() },
        ];
        for s in bad {
            assert!(matches!(s.validate(), Err(Error::Invalid(_))), "{s:?}");
            assert!(Sampler::new(&s).is_err());
        }
    }

    #[test]
    fn bad_logits_are_errors() {
        let mut s = sampler(Sampling::default());
        assert!(matches!(s.sample(&[], &[]), Err(Error::Invalid(_))));
        assert!(matches!(s.sample(&[1.0, f32::NAN], &[]), Err(Error::Invalid(_))));
        assert!(matches!(s.sample(&[f32::NEG_INFINITY; 3], &[]), Err(Error::Invalid(_))));
    }
}
