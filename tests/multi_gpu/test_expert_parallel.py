import pytest
import torch

from torchcost import profile
from torchcost.errors import ProfilingError
from torchcost.hardware import hardware
from torchcost.multi_gpu.estimate import Probes, Training, parallel, token_inputs
from torchcost.multi_gpu.expert_parallel import split_experts
from torchcost.multi_gpu.layout import Layout
from torchcost.multi_gpu.rank_probe import Share

transformers = pytest.importorskip("transformers")
SEQ = 32


def mixtral(**overrides):
    values = dict(hidden_size=64, intermediate_size=96, num_attention_heads=8, num_key_value_heads=4)
    values |= dict(num_hidden_layers=4, vocab_size=256, num_local_experts=4, num_experts_per_tok=2) | overrides
    with torch.device("meta"):
        return transformers.MixtralForCausalLM(transformers.MixtralConfig(**values))


def test_a_rank_keeps_its_experts_and_routes_among_them():
    model = mixtral()
    blocks = split_experts(model, 2)
    assert blocks == [f"model.layers.{i}.mlp" for i in range(4)]
    moe = model.model.layers[0].mlp
    assert moe.experts.gate_up_proj.shape == (2, 192, 64) and moe.experts.down_proj.shape == (2, 64, 96)
    assert moe.gate.weight.shape == (2, 64) and moe.experts.num_experts == moe.gate.num_experts == 2
    ids = torch.zeros(1, 8, dtype=torch.long)
    profile(model, ids, device="meta")  # runs with its 2 experts


@pytest.mark.parametrize(
    ("ep", "message"),
    [
        (3, "ep 3 does not divide the 4 experts of MixtralForCausalLM"),
        (4, "each token goes to 2 experts, more than the 1 each of 4 ranks holds, .*; give an ep of at most 2"),
    ],
)
def test_splits_that_cannot_route_are_refused(ep, message):
    with pytest.raises(ProfilingError, match=message):
        split_experts(mixtral(), ep)


def test_a_dense_model_has_no_experts_to_split():
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(hidden_size=64, num_hidden_layers=2))
    with pytest.raises(ProfilingError, match="LlamaForCausalLM has no experts to split"):
        split_experts(model, 2)


def test_expert_parallel_memory_and_collectives():
    model = mixtral()
    probes = Probes(model, token_inputs(model), SEQ, hardware("h100-sxm"), torch.bfloat16)
    layout = Layout(dp=4, ep=2, zero=1, microbatches=2)
    found = parallel(model, layout, training=Training(seq_len=SEQ), probes=probes)
    rank = probes.get(Share(1, 1, "none", ep=2))
    # 2 of the 4 experts per layer: gate_up 2 * 192 * 64, down 2 * 64 * 96
    assert rank.layer.expert_params == 2 * 192 * 64 + 2 * 64 * 96
    experts = rank.layer.expert_params * 4
    dense = found.memory.params - experts
    # optimizer state (12 bytes each with bf16 weights) over the 4 data-parallel ranks, the experts' over the 2
    # that hold the same experts
    assert found.memory.optimizer_bytes == dense * 12 // 4 + experts * 12 // 2
    by_name = {c.name: c for c in found.step.collectives}
    routed = by_name["expert all-to-all (dispatch, combine)"]
    # each token's hidden state (64 bf16) to 2 experts, 32 tokens; dispatch and combine, forward and backward,
    # in 4 layers and 2 microbatches
    assert (routed.nbytes, routed.count, routed.group) == (32 * 64 * 2 * 2, 4 * 4 * 2, 2)
    assert by_name["expert gradient reduce-scatter"].group == 2
    assert by_name["gradient reduce-scatter"].nbytes == dense * 4
