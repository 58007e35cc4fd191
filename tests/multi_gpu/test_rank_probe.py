"""Activation memory per layer against Korthikanti et al. 2022, "Reducing Activation Recomputation in Large
Transformer Models", Table 2, on a GPT block written as Megatron-LM writes it (tests/multi_gpu/megatron_gpt.py)."""

import pytest
import torch

from tests.multi_gpu.megatron_gpt import GPT
from torchcost import profile
from torchcost.emulate.on_meta import CudaChoices
from torchcost.errors import ProfilingError
from torchcost.hardware import hardware
from torchcost.multi_gpu.estimate import Probes, Training, parallel, token_inputs
from torchcost.multi_gpu.layout import Layout
from torchcost.multi_gpu.rank_probe import Share, repeated_by_tp_ranks
from torchcost.multi_gpu.tensor_parallel import split_for_rank

S, B, H, A = 64, 2, 128, 4  # sequence, microbatch, hidden, heads
# Table 2 leaves out LayerNorm's mean and rstd: fp32, one each per token, for each of the layer's 2 LayerNorms
LN_STATS = 2 * 2 * 4 * S * B
VIEWS = ("aten.view", "aten.transpose", "aten.t", "aten.split", "aten.reshape", "aten.permute", "aten.detach")


def gpt(layers=4):
    with torch.device("meta"):
        return GPT(vocab=1024, hidden=H, heads=A, layers=layers, seq=S)


@pytest.fixture(scope="module")
def probes():
    return Probes(gpt(), token_inputs(), S, hardware("h100-sxm"), torch.float16)


@pytest.mark.parametrize("t", [1, 2, 4])
def test_tensor_parallel_rows(probes, t):
    # Table 2, "tensor parallelism (baseline)": sbh (10 + 24/t + 5as/(ht)); t = 1 is sbh (34 + 5as/h)
    expected = S * B * H * 10 + S * B * H * 24 // t + 5 * A * S * S * B // t
    assert probes.get(Share(t, B, "none")).layer.activations == expected + LN_STATS


@pytest.mark.parametrize("t", [1, 2, 4])
def test_selective_recomputation_rows(probes, t):
    # Table 2, "tensor parallelism + selective activation recomputation": sbh (10 + 24/t); the attention core's
    # softmax, its dropout mask and its output (5as^2b/t) are recomputed, its inputs q, k, v kept
    expected = S * B * H * 10 + S * B * H * 24 // t
    assert probes.get(Share(t, B, "selective")).layer.activations == expected + LN_STATS


@pytest.mark.parametrize("t", [1, 2])
def test_full_recomputation_keeps_each_layers_input(probes, t):
    # Table 2, "full activation recomputation": 2sbh (the input, which is not split without sequence parallelism)
    assert probes.get(Share(t, B, "full")).layer.activations == 2 * S * B * H


def test_sequence_parallel_row():
    # Table 2, "tensor parallelism + sequence parallelism": sbh/t (34 + 5as/h); four more layers add four of them
    t, training = 2, Training(seq_len=S, dtype=torch.float16)
    layout = Layout(tp=t, sp=True, microbatch=B)
    more = parallel(gpt(8), layout, training=training).memory.activation_bytes
    fewer = parallel(gpt(4), layout, training=training).memory.activation_bytes
    assert more - fewer == 4 * (S * B * H * 34 + 5 * A * S * S * B + LN_STATS) // t


def layer_records(t):
    """The records of a one-layer GPT split for one of ``t`` tensor-parallel ranks, forward and backward."""
    model = gpt(layers=1)
    split_for_rank(model, t, None)
    args, kwargs = token_inputs()(B, S)
    with CudaChoices():
        return profile(model, *args, device="meta", backward=True, **kwargs).records


@pytest.mark.parametrize("t", [2, 4])
def test_sequence_parallelism_splits_what_every_rank_repeats(t):
    # Korthikanti et al. 2022, section 4.2.2: each tensor-parallel rank runs a layer's LayerNorms, the dropouts
    # after attention and after the MLP, and the residual adds, on 1/t of the tokens; what the split narrowed stays
    # as it is (at t = 4 the GeLU's 4h / t columns are as wide as the model, and still split; its one head per rank
    # reshapes without the copy the whole model makes)
    rank, whole = layer_records(t), layer_records(1)
    repeated = [rank[i] for i in repeated_by_tp_ranks(rank, whole)]
    in_layer = [r.op for r in repeated if r.phase == "forward" and "layers.0" in " ".join(r.modules)]
    assert sorted(op for op in in_layer if op not in VIEWS) == (
        ["aten.add"] * 2 + ["aten.native_dropout"] * 2 + ["aten.native_layer_norm"] * 2
    )
    assert not any(r.op in ("aten.gelu", "aten.gelu_backward", "aten.bmm", "aten._softmax") for r in repeated)


def test_sequence_parallelism_shortens_each_layer(probes):
    plain, split = probes.get(Share(2, B, "none")).layer, probes.get(Share(2, B, "none", sp=True)).layer
    assert split.forward_s < plain.forward_s and split.backward_s < plain.backward_s


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_transformers_gpt2_differs_from_table_2_term_by_term(attention):
    # Table 2 without parallelism, sbh (34 + 5as/h) bytes a layer (+ the LayerNorm statistics), and what GPT-2's
    # code keeps besides: its MLP's gelu_new is the tanh formula in seven ops, which keep four 4h-wide fp16
    # tensors (32sbh) where a fused GeLU keeps its input (8sbh): +24sbh. With SDPA, CUDA's fused kernel keeps no
    # s x s tensor (-5as^2b) but its fp32 log-sum-exp (4asb), and the causal mask transformers passes is made
    # additive in fp16 in each layer (2bs^2).
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(
        n_embd=H, n_head=A, n_layer=4, vocab_size=1024, n_positions=S, attn_implementation=attention,
        bos_token_id=None, eos_token_id=None,
    )  # fmt: skip
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(config)
    saved = Probes(model, token_inputs(model), S, hardware("h100-sxm"), torch.float16).get(Share(1, B, "none"))
    table = S * B * H * 34 + 5 * A * S * S * B + LN_STATS
    sdpa = -5 * A * S * S * B + 4 * A * S * B + 2 * B * S * S if attention == "sdpa" else 0
    assert saved.layer.activations == table + 24 * S * B * H + sdpa


def test_selective_recomputation_needs_an_attention_core_module():
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(hidden_size=64, intermediate_size=96, num_attention_heads=4, num_hidden_layers=2)
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    with pytest.raises(ProfilingError, match=r"LlamaForCausalLM has no 'core_attention' module .* use recompute"):
        Probes(model, token_inputs(model), 16, hardware("h100-sxm"), torch.bfloat16).get(Share(1, 1, "selective"))


def test_the_first_part_keeps_the_embeddings_output(probes):
    # the first layer's input (word + position embeddings, 2sbh) and the positions the embedding keeps (s int64)
    assert probes.get(Share(1, B, "none")).first.activations == 2 * S * B * H + 8 * S
