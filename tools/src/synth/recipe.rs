//! What `--dtype` stores each tensor in: one dtype for every matrix (`bf16`, `q8_0`, `q4_0`), or
//! llama.cpp's `Q4_K_M` mix, so a synthesized file has the byte layout of the files people run.
//!
//! Q4_K_M, as `llama-quantize` chooses it for Gemma 4 (`llama_tensor_get_type` in llama.cpp's
//! src/llama-quant.cpp):
//! - the tied token table and the per-layer (PLE) table: Q6_K (they are also the LM head's input);
//! - `attn_v`: Q6_K where [`more_bits`] holds, counting the `attn_v` tensors in file order
//!   (KV-shared layers and `attention_k_eq_v` layers have none);
//! - `ffn_down` and `ffn_down_exps`: Q6_K where [`more_bits`] holds for the layer in the name;
//! - every other matrix Q4_K; the MoE router and `per_layer_model_proj` are not quantized (F32
//!   and BF16, as a BF16 conversion leaves them), vectors F32;
//! - a row length that is not whole 256-blocks falls back: Q4_K -> Q5_0, Q6_K -> Q8_0, and to
//!   F16 if not whole 32-blocks either.

use super::arch::{Kind, Spec};
use garnet_kernels::DType;

/// The weight types `--dtype` accepts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Recipe {
    /// Every matrix in this dtype.
    Uniform(DType),
    /// llama.cpp's Q4_K_M mix (see the [module](self)).
    Q4KM,
}

impl Recipe {
    /// `--dtype`'s spellings.
    pub fn parse(s: &str) -> Result<Recipe, String> {
        match s.to_ascii_lowercase().as_str() {
            "bf16" => Ok(Recipe::Uniform(DType::BF16)),
            "q8_0" => Ok(Recipe::Uniform(DType::Q8_0)),
            "q4_0" => Ok(Recipe::Uniform(DType::Q4_0)),
            "q4_k_m" => Ok(Recipe::Q4KM),
            _ => Err(format!("{s:?}: expected bf16, q8_0, q4_0 or q4_k_m")),
        }
    }

    /// Whether the matrices are block-quantized (the output is then a GGUF).
    pub fn is_quantized(self) -> bool {
        self != Recipe::Uniform(DType::BF16)
    }

    /// How the summary line names it.
    pub fn name(self) -> &'static str {
        match self {
            Recipe::Uniform(d) => d.name(),
            Recipe::Q4KM => "Q4_K_M",
        }
    }

    /// llama.cpp's `general.file_type` (LLAMA_FTYPE_MOSTLY_*).
    pub fn file_type(self) -> u32 {
        match self {
            Recipe::Uniform(DType::Q4_0) => 2,
            Recipe::Uniform(DType::Q8_0) => 7,
            Recipe::Q4KM => 15,
            Recipe::Uniform(_) => 32,
        }
    }

    /// The stored dtype of every spec, in order. Uniform: the dtype for matrices whose rows are
    /// whole blocks; in GGUF F32 for everything else (as llama.cpp), in safetensors the float.
    pub fn dtypes(self, specs: &[Spec], n_layers: usize, gguf: bool) -> Vec<DType> {
        let n_v = specs.iter().filter(|s| is_attn_v(s)).count();
        let mut i_v = 0;
        specs
            .iter()
            .map(|s| {
                let cols = s.shape.last().copied().unwrap_or(0);
                match self {
                    Recipe::Uniform(d) => match s.kind {
                        Kind::Matrix if cols.is_multiple_of(d.block().0) => d,
                        _ if gguf || d.is_quantized() => DType::F32,
                        _ => d,
                    },
                    Recipe::Q4KM if s.kind != Kind::Matrix => DType::F32,
                    Recipe::Q4KM => {
                        let wide = if is_attn_v(s) {
                            i_v += 1;
                            more_bits(i_v - 1, n_v)
                        } else if s.gguf.contains("ffn_down") {
                            layer_of(&s.gguf).is_some_and(|i| more_bits(i, n_layers))
                        } else {
                            matches!(s.gguf.as_str(), "token_embd.weight" | "per_layer_token_embd.weight")
                        };
                        match s.gguf.as_str() {
                            "per_layer_model_proj.weight" => DType::BF16,
                            _ if wide => fit(DType::Q6_K, cols),
                            _ => fit(DType::Q4_K, cols),
                        }
                    }
                }
            })
            .collect()
    }
}

/// llama.cpp's `use_more_bits`: the first and last eighth of the layers and every third between.
fn more_bits(i: usize, n: usize) -> bool {
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

fn is_attn_v(s: &Spec) -> bool {
    s.kind == Kind::Matrix && s.gguf.ends_with("attn_v.weight")
}

/// `N` of a `blk.N.` name.
fn layer_of(name: &str) -> Option<usize> {
    name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
}

/// A k-quant `dtype`, or llama.cpp's fallback when rows of `cols` are not whole blocks of it.
fn fit(dtype: DType, cols: usize) -> DType {
    let smaller = if dtype == DType::Q6_K { DType::Q8_0 } else { DType::Q5_0 };
    [dtype, smaller].into_iter().find(|d| cols.is_multiple_of(d.block().0)).unwrap_or(DType::F16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_bits_is_llama_cpps_rule() {
        // Worked by hand from `i < n/8 || i >= 7*n/8 || (i - n/8) % 3 == 2` with integer division:
        // n = 35 (E2B): n/8 = 4, 7n/8 = 30; n = 30 (26B-A4B): 3, 26.
        let e2b: Vec<usize> = (0..35).filter(|&i| more_bits(i, 35)).collect();
        assert_eq!(e2b, [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 31, 32, 33, 34]);
        let moe: Vec<usize> = (0..30).filter(|&i| more_bits(i, 30)).collect();
        assert_eq!(moe, [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29]);
    }

    #[test]
    fn rows_that_are_not_whole_blocks_fall_back() {
        assert_eq!(fit(DType::Q4_K, 704), DType::Q5_0);
        assert_eq!(fit(DType::Q6_K, 704), DType::Q8_0);
        assert_eq!(fit(DType::Q4_K, 1536), DType::Q4_K);
        assert_eq!(fit(DType::Q4_K, 80), DType::F16);
        assert_eq!(layer_of("blk.12.ffn_down.weight"), Some(12));
        assert_eq!(layer_of("token_embd.weight"), None);
    }
}
