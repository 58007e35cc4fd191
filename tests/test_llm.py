"""LLM cost on small random configs, against analytic counts. The model's own code runs on meta."""

import pytest
import torch

from torchcost.errors import ProfilingError
from torchcost.hardware import Hardware
from torchcost.llm import cache_tensors, llm_profile
from torchcost.llm_models import build_llm, check_causal_lm

transformers = pytest.importorskip("transformers")

E, F, L, H, KV, V = 64, 128, 2, 4, 2, 100  # hidden, MLP, layers, query heads, key/value heads, vocabulary
HD = E // H  # head dim 16
TOY = Hardware("toy", "toy GPU", "gpu", {"bf16": 1e14, "fp32": 1e13}, 1e12, 1e10, 10, "test")


DENSE = dict(
    hidden_size=E,
    intermediate_size=F,
    num_hidden_layers=L,
    num_attention_heads=H,
    num_key_value_heads=KV,
    vocab_size=V,
)


def llama(**overrides):
    config = transformers.LlamaConfig(**{**DENSE, **overrides})
    with torch.device("meta"):
        return transformers.LlamaForCausalLM(config)


# per token: q and o projections E x E, k and v E x (KV * HD), gate/up/down 3 x E x F, LM head E x V
DENSE_PER_TOKEN = L * (2 * E * E + 2 * E * KV * HD + 3 * E * F) + E * V


def attention_macs(batch: int, pairs: int) -> int:
    return batch * L * H * pairs * 2 * HD  # scores and weighted sum, HD each per (query, key) pair


def test_prefill_and_decode_macs_match_the_analytic_formula():
    batch, prompt, gen = 2, 8, 4
    result = llm_profile(llama(), prompt, gen, batch, hardware_name=TOY, sweep=False)
    causal_pairs = prompt * (prompt + 1) // 2
    assert result.prefill.macs == batch * prompt * DENSE_PER_TOKEN + attention_macs(batch, causal_pairs)
    contexts = [step.context for step in result.decode]
    assert contexts == [8, 10, 11]  # first, middle and last generated token
    for step in result.decode:  # the new token attends to every cached token and itself
        assert step.macs == batch * DENSE_PER_TOKEN + attention_macs(batch, step.context + 1)
        assert 2 * step.macs <= step.flops <= 2.1 * step.macs  # norms, rotary, activations, softmax on top
    assert result.params_active == DENSE_PER_TOKEN


def test_kv_cache_bytes_and_decode_bytes():
    result = llm_profile(
        llama(hidden_size=256, intermediate_size=512, head_dim=64), 16, 4, 1, hardware_name=TOY, sweep=False
    )
    per_token = 2 * L * KV * 64 * 2  # keys and values, layers, kv heads, head dim 64, bf16
    assert result.kv_cache_bytes_per_token == per_token
    assert result.kv_cache_bytes == per_token * (16 + 4)
    weights = result.weights_bytes - V * 256 * 2  # the input embedding is gathered, not read whole
    step = result.decode[0]
    kv_read = per_token * 16
    assert weights + kv_read <= step.bytes <= 1.1 * (weights + kv_read)  # plus activations (stated margin)
    assert result.prefill.intensity > step.intensity
    # a toy model's step is mostly its kernels' fixed costs, and is said to be so (not memory-bound)
    assert step.overhead_s > step.memory_s + step.compute_s and step.bound == "overhead"


def test_quantised_weights_and_kv_shrink_memory_and_decode_bytes():
    full = llm_profile(llama(), 8, 2, 1, hardware_name=TOY, sweep=False)
    small = llm_profile(llama(), 8, 2, 1, kv_dtype="fp8", weight_bits=4, hardware_name=TOY, sweep=False)
    assert small.weights_bytes == full.weights_bytes // 4
    assert small.kv_cache_bytes_per_token == full.kv_cache_bytes_per_token / 2
    assert small.decode[0].bytes < full.decode[0].bytes
    assert small.decode[0].macs == full.decode[0].macs


def test_each_pass_is_predicted_eager_and_as_a_cuda_graph():
    result = llm_profile(llama(), 8, 2, 1, hardware_name=TOY, sweep=False)
    step = result.decode[0]
    assert result.execution == "graphs" and step.time_s == step.graphs_s
    assert step.graphs_s is not None and step.eager_s > step.graphs_s  # eager pays the host's dispatch per op
    assert result.eager_time_per_output_token_s == pytest.approx(step.eager_s, rel=0.05)
    eager = llm_profile(llama(), 8, 2, 1, hardware_name=TOY, sweep=False, execution="eager")
    assert eager.execution == "eager" and eager.time_per_output_token_s == pytest.approx(
        result.eager_time_per_output_token_s
    )
    cpu_like = Hardware("soc", "toy SoC", "soc", {"bf16": 1e12, "fp32": 1e12}, 1e11, 1e10, 4, "test")
    on_soc = llm_profile(llama(), 8, 2, 1, hardware_name=cpu_like, sweep=False)
    assert on_soc.execution == "eager" and on_soc.decode[0].graphs_s is None
    with pytest.raises(ValueError, match="not a GPU"):
        llm_profile(llama(), 8, 2, 1, hardware_name=cpu_like, sweep=False, execution="graphs")


def test_llama_3_8b_decodes_in_a_serving_engines_time_on_an_h100():
    # serving engines report 4 to 10 ms per token for Llama-3-8B in bf16 at batch 1 on an H100: its 16 GB of
    # weights at 3.35 TB/s are 4.8 ms; the CUDA-graph step is that and the fixed cost of its ~1,300 kernels
    result = llm_profile("llama-3-8b", 1024, 2, 1, hardware_name="h100", sweep=False)
    assert 4e-3 <= result.time_per_output_token_s <= 10e-3
    assert result.decode[0].bound == "memory"
    assert result.eager_time_per_output_token_s > 2 * result.time_per_output_token_s  # the host's dispatch


def test_tied_embeddings_count_once_and_the_head_still_multiplies():
    tied = llm_profile(llama(tie_word_embeddings=True), 8, 2, 1, hardware_name=TOY, sweep=False)
    untied = llm_profile(llama(), 8, 2, 1, hardware_name=TOY, sweep=False)
    assert untied.params_total - tied.params_total == E * V
    assert tied.params_active == untied.params_active == DENSE_PER_TOKEN


# Mixtral in small: four experts, two per token
MIXTRAL = dict(**DENSE, num_local_experts=4, num_experts_per_tok=2)


def test_mixture_of_experts_active_params():
    with torch.device("meta"):
        model = transformers.MixtralForCausalLM(transformers.MixtralConfig(**MIXTRAL))
    result = llm_profile(model, 8, 2, 1, hardware_name=TOY, sweep=False)
    router = L * E * 4
    attention = L * (2 * E * E + 2 * E * KV * HD)
    assert result.params_active == attention + L * 2 * 3 * E * F + router + E * V  # two of four experts
    assert result.params_total > result.params_active
    assert any(note.startswith("mixture of experts") for note in result.assumptions)


def test_dense_models_have_no_mixture_of_experts_note():
    result = llm_profile(llama(), 8, 2, 1, hardware_name=TOY, sweep=False)
    assert not any("experts" in note for note in result.assumptions)


def test_sliding_window_caps_the_cache():
    config = transformers.MistralConfig(**DENSE, sliding_window=4)
    with torch.device("meta"):
        model = transformers.MistralForCausalLM(config)
    windowed = llm_profile(model, 16, 2, 1, hardware_name=TOY, sweep=False)
    full = llm_profile(llama(), 16, 2, 1, hardware_name=TOY, sweep=False)
    assert windowed.decode[0].macs < full.decode[0].macs
    assert windowed.kv_cache_bytes < full.kv_cache_bytes


def test_batch_sweep_stops_at_the_memory_limit():
    result = llm_profile(llama(), 8, 2, 1, hardware_name=TOY, sweep=True)
    assert result.sweep[-1].fits is False or result.sweep[-1].batch == 1024
    assert all(point.fits for point in result.sweep[:-1])
    assert result.fits is True  # 10 GB of toy memory holds a tiny model
    rates = [point.tokens_per_s for point in result.sweep]
    assert rates == sorted(rates)  # more sequences per step, more tokens per second


def test_the_sweep_never_gets_faster_per_step_with_more_sequences():
    # a weight-bound decode step reads the same weights for every batch: its time can only grow with the batch
    result = llm_profile(llama(hidden_size=256, intermediate_size=1024), 64, 8, 1, hardware_name="h100")
    steps = [point.time_per_token_s for point in result.sweep]
    assert len(steps) >= 5 and steps == sorted(steps)
    rates = [point.tokens_per_s for point in result.sweep]
    assert rates == sorted(rates)


def test_cache_tensors_walks_nested_objects():
    class Holder:
        def __init__(self):
            self.layers = [{"k": torch.zeros(2)}, (torch.zeros(3),)]

    assert [t.numel() for t in cache_tensors(Holder())] == [2, 3]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="precision"):
        llm_profile(llama(), 8, 2, 1, dtype="fp12", hardware_name=TOY, sweep=False)


# DeepSeek-V3 in small: multi-head latent attention (query rank QL, latent rank KVL, head dims NOPE + ROPE for
# queries and keys, VD for values), layer 0 dense (MLP F), layer 1 mixture of experts (NR routed experts of width
# MF, TOPK per token, one shared expert of width MF).
QL, KVL, NOPE, ROPE, VD, NR, TOPK, MF = 32, 16, 8, 4, 8, 4, 2, 16


DEEPSEEK_V3 = dict(
    DENSE,
    num_key_value_heads=H,
    moe_intermediate_size=MF,
    n_routed_experts=NR,
    num_experts_per_tok=TOPK,
    n_shared_experts=1,
    first_k_dense_replace=1,
    n_group=1,
    topk_group=1,
    q_lora_rank=QL,
    kv_lora_rank=KVL,
    qk_nope_head_dim=NOPE,
    qk_rope_head_dim=ROPE,
    v_head_dim=VD,
)


def deepseek_v3():
    with torch.device("meta"):
        return transformers.DeepseekV3ForCausalLM(transformers.DeepseekV3Config(**DEEPSEEK_V3))


def mla_per_token(keys: int) -> int:
    """MACs of one layer's latent attention for one new token attending to ``keys`` cached keys (itself included):
    query down/up projections, the latent and shared rope key, re-expanding every cached latent into per-head keys
    and values (transformers does this at every step), scores and weighted sum, output projection."""
    queries = E * QL + QL * H * (NOPE + ROPE)
    latent = E * (KVL + ROPE)
    expand = keys * KVL * H * (NOPE + VD)
    attend = H * keys * ((NOPE + ROPE) + VD)
    return queries + latent + expand + attend + H * VD * E


# layer 0: dense MLP; layer 1: router, TOPK routed experts and the shared one (gate, up and down each); LM head
MLP_PER_TOKEN = 3 * E * F + E * NR + TOPK * 3 * E * MF + 3 * E * MF + E * V


def test_deepseek_v3_latent_attention_and_experts_match_the_analytic_count():
    result = llm_profile(deepseek_v3(), 8, 4, 1, hardware_name=TOY, sweep=False)
    for step in result.decode:
        assert step.macs == 2 * mla_per_token(step.context + 1) + MLP_PER_TOKEN
    # weights one token multiplies through: attention projections (kv_b_proj once), dense MLP, router, 2 of 4
    # routed experts, the shared expert, LM head
    weights = 2 * (E * QL + QL * H * (NOPE + ROPE) + E * (KVL + ROPE) + KVL * H * (NOPE + VD) + H * VD * E)
    assert result.params_active == weights + MLP_PER_TOKEN
    # transformers caches the latent: (KVL + ROPE) bf16 values per layer and token
    assert result.kv_cache_bytes_per_token == result.latent_cache.latent == 2 * (KVL + ROPE) * 2
    assert result.latent_cache.expanded == 2 * H * (NOPE + ROPE + VD) * 2
    assert any("latent attention" in note for note in result.assumptions)


def test_a_context_past_the_configs_positions_is_refused():
    model = llama(max_position_embeddings=32)
    refused = "prompt_len \\+ gen_len = 40 tokens, but LlamaForCausalLM takes at most 32"
    with pytest.raises(ProfilingError, match=refused) as e:
        llm_profile(model, 32, 8, 1, hardware_name=TOY, sweep=False)
    assert "--prompt-len 24 --gen-len 8" in e.value.cli
    assert llm_profile(model, 24, 8, 1, hardware_name=TOY, sweep=False).prompt_len == 24  # exactly full is fine


def test_gpt2_takes_1024_positions():
    model = build_llm("gpt2")
    with pytest.raises(ProfilingError, match="at most 1,024 positions"):
        llm_profile(model, 2000, 2, 1, hardware_name=TOY, sweep=False)


def test_an_unknown_preset_names_the_closest_and_the_list():
    with pytest.raises(ProfilingError, match="did you mean llama-3-8b") as e:
        build_llm("llama3-8b")
    assert "torchcost list shows the presets" in str(e.value)


@pytest.mark.parametrize(
    "name",
    [
        "llama-3-8b",
        "llama-3-70b",
        "llama-3-405b",
        "mistral-7b",
        "mixtral-8x7b",
        "qwen2-7b",
        "deepseek-v3",
        "gemma-2b",
        "gpt2",
        "gpt-neox-1b",
    ],
)
def test_the_first_llm_presets_still_answer_with_their_checkpoints(name):
    """The names torchcost llm took before the presets became checkpoint configs."""
    model = build_llm(name)
    check_causal_lm(name, model)


def test_a_model_that_is_not_a_causal_lm_is_refused():
    config = transformers.BertConfig(hidden_size=E, intermediate_size=F, num_hidden_layers=1, num_attention_heads=H)
    with torch.device("meta"):
        model = transformers.BertForMaskedLM(config)
    with pytest.raises(ProfilingError, match="not a causal LM"):
        llm_profile(model, 8, 2, 1, hardware_name=TOY, sweep=False)
