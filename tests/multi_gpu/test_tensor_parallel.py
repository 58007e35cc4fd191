import pytest
import torch
from torch import nn

from torchcost import profile
from torchcost.errors import ProfilingError
from torchcost.multi_gpu.tensor_parallel import TensorPlan, split_for_rank

transformers = pytest.importorskip("transformers")


def llama(**overrides):
    values = dict(hidden_size=64, intermediate_size=96, num_attention_heads=8, num_key_value_heads=4)
    values |= dict(num_hidden_layers=2, vocab_size=251, tie_word_embeddings=False) | overrides
    with torch.device("meta"):
        return transformers.LlamaForCausalLM(transformers.LlamaConfig(**values))


def params(model):
    return sum(p.numel() for p in model.parameters())


def test_llama_rank_holds_its_share_of_every_matmul_and_whole_norms():
    model = llama()
    split = split_for_rank(model, 2)
    assert split.column == [f"model.layers.{i}.{name}" for i in (0, 1) for name in (
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.gate_proj", "mlp.up_proj")]  # fmt: skip
    assert split.row == [f"model.layers.{i}.{name}" for i in (0, 1) for name in ("self_attn.o_proj", "mlp.down_proj")]
    assert split.vocab == ["model.embed_tokens", "lm_head"]
    # per layer, over 2 ranks: q, o 64*64/2; k, v 64*(4*8)/2; gate, up, down 64*96/2; two RMSNorms 64 whole
    layer = 2 * 2048 + 2 * 1024 + 3 * 3072 + 2 * 64
    # the vocabulary 251 padded to 252 over 2 ranks: embedding and head 126*64 each; the final norm 64 whole
    assert params(model) == 2 * layer + 2 * 126 * 64 + 64
    assert split.notes == ["the vocabulary of 251 is padded to 252 to split over 2 ranks"]


def test_the_rank_runs_with_its_own_shapes():
    model = llama()
    split_for_rank(model, 4)
    ids = torch.zeros(1, 16, dtype=torch.long)
    counted = profile(model, ids, device="meta")
    q_proj = [r for r in counted.records if "model.layers.0.self_attn.q_proj" in r.modules and r.op == "aten.mm"]
    assert q_proj[0].output_shapes == ((16, 16),)  # 64 / 4 output features
    assert counted.records[-1].output_shapes[-1][-1] == 63  # the logits: 252 / 4 of the padded vocabulary


def test_tied_weights_stay_tied():
    model = llama(tie_word_embeddings=True)
    split_for_rank(model, 2)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert model.lm_head.weight.shape == (126, 64)  # 251 padded to 252, / 2


def test_gpt2_fused_projection_and_split_size():
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(
            transformers.GPT2Config(
                n_embd=64, n_head=4, n_layer=1, vocab_size=100, bos_token_id=None, eos_token_id=None
            )
        )
    split_for_rank(model, 2)
    attention = model.transformer.h[0].attn
    assert (attention.c_attn.nf, attention.split_size, attention.num_heads) == (96, 32, 2)  # 3*64/2, 64/2, 4/2
    assert attention.c_proj.weight.shape == (32, 64)  # row-parallel: (in / 2, out)
    assert model.transformer.wpe.weight.shape == (1024, 64)  # positions are not the vocabulary
    profile(model, torch.zeros(1, 8, dtype=torch.long), device="meta")


def test_heads_that_do_not_split_are_refused():
    with pytest.raises(ProfilingError, match="tp 8 does not divide the 4 heads of LlamaForCausalLM"):
        split_for_rank(llama(), 8)


def test_a_model_without_known_names_asks_for_a_plan():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
    with pytest.raises(ProfilingError, match=r"found no column-parallel matmul in Sequential .* TensorPlan"):
        split_for_rank(model, 2)
    split = split_for_rank(model, 2, TensorPlan(column=("0",), row=("2",)))
    assert (model[0].weight.shape, model[2].weight.shape) == ((4, 8), (8, 4))
    assert (split.column, split.row) == (["0"], ["2"])
