import pytest
import torch

from torchcost import profile
from torchcost.errors import ProfilingError
from torchcost.hardware import hardware
from torchcost.hardware.interconnect import interconnect
from torchcost.multi_gpu.collectives import Group, collective_s
from torchcost.multi_gpu.estimate import Probes, Training, parallel, token_inputs
from torchcost.multi_gpu.layout import Layout
from torchcost.multi_gpu.rank_memory import in_flight
from torchcost.multi_gpu.rank_probe import Share

transformers = pytest.importorskip("transformers")
H100 = hardware("h100-sxm")
SEQ = 32


@pytest.fixture(scope="module")
def llama():
    config = transformers.LlamaConfig(
        hidden_size=64, intermediate_size=96, num_attention_heads=8, num_key_value_heads=4, num_hidden_layers=4,
        vocab_size=256, tie_word_embeddings=False,
    )  # fmt: skip
    with torch.device("meta"):
        return transformers.LlamaForCausalLM(config)


@pytest.fixture(scope="module")
def probes(llama):
    return Probes(llama, token_inputs(llama), SEQ, H100, torch.bfloat16)


def estimate(llama, probes, training=None, **layout):
    return parallel(llama, Layout(**layout), H100, training or Training(seq_len=SEQ), probes=probes)


def test_weights_and_optimizer_match_megatrons_formula(llama, probes):
    # Megatron-LM theoretical_memory_usage.py, h 64, ffn 96 (SwiGLU), 8 heads, 4 query groups, 4 layers, vocab 256:
    # layer = 2h (3/2 ffn + 1) + 2h^2 (1 + 4/8) = 18560 + 12288 = 30848; block = 4 * 30848 + 64 (final norm)
    # most loaded shard (pp 1, untied) = (block + 2 * 256 * 64) / tp = (123456 + 32768) / 2 = 78112 at tp 2,
    # at (6 + 12/dp) bytes each with the distributed optimizer.
    # Megatron divides the RMSNorm weights by tp too; each rank keeps them whole: (2 * 64 * 4 + 64) / 2 = 288 more
    found = estimate(llama, probes, dp=4, tp=2, zero=1).memory
    assert found.params == 78112 + 288
    assert found.model_state_bytes == (78112 + 288) * (6 + 12 // 4)


@pytest.mark.parametrize(
    ("zero", "bytes_per_psi_times_4"),
    [
        (1, 2 * 4 + 2 * 4 + 12),  # ZeRO paper, Figure 1, P_os: 2 + 2 + K/N with K = 12, N = 4
        (2, 2 * 4 + 14),  # P_os+g: 2 + (2 + K)/N
        (3, 16),  # P_os+g+p: (2 + 2 + K)/N
    ],
)
def test_zero_stages_match_the_zero_paper(llama, probes, zero, bytes_per_psi_times_4):
    psi = 123456 + 2 * 256 * 64  # every parameter on one rank (tp 1, pp 1)
    training = Training(seq_len=SEQ, grad_bytes=2)  # 16-bit gradients, as the paper counts them
    found = estimate(llama, probes, training, dp=4, zero=zero).memory
    assert found.model_state_bytes == psi * bytes_per_psi_times_4 // 4


def test_microbatches_in_flight():
    assert in_flight(Layout(pp=2, microbatches=1)) == 1
    assert in_flight(Layout(pp=2, microbatches=8)) == 2  # 1F1B: one per stage
    assert in_flight(Layout(pp=2, vpp=2, microbatches=8)) == 2 * (1 + 1 / 4)  # Megatron's interleaving penalty


def test_first_stage_activations(llama, probes):
    found = estimate(llama, probes, pp=2, microbatches=8)
    rank = probes.get(Share(1, 1, "none"))
    assert found.memory.activation_bytes == round((rank.layer.activations * 2 + rank.first.activations) * 2)


def test_step_time_adds_up(llama, probes):
    step = estimate(llama, probes, dp=2, tp=2, pp=2, sp=True, microbatches=4, zero=1).step
    per_microbatch = (step.compute_s + step.tp_comm_s + step.pp_comm_s) / 4
    assert step.bubble_s == pytest.approx(1 * per_microbatch)  # (pp - 1) / vpp microbatch times
    parts = step.compute_s + step.tp_comm_s + step.pp_comm_s + step.bubble_s + step.dp_exposed_s + step.optimizer_s
    assert step.total_s == pytest.approx(parts)


def test_collectives_and_their_buffers(llama, probes):
    links = interconnect("h100-sxm")
    step = estimate(llama, probes, dp=4, tp=2, microbatches=2, zero=1).step
    by_name = {c.name: c for c in step.collectives}
    hidden = 1 * SEQ * 64 * 2  # microbatch x sequence x hidden x bf16
    assert by_name["tensor-parallel all-reduce"].nbytes == hidden
    assert by_name["tensor-parallel all-reduce"].count == 4 * 4 * 2  # 4 per layer, 4 layers, 2 microbatches
    params = estimate(llama, probes, dp=4, tp=2).memory.params
    reduce = by_name["gradient reduce-scatter"]
    assert (reduce.nbytes, reduce.group) == (params * 4, 4)  # fp32 gradients over the 4 data-parallel ranks
    assert reduce.seconds == collective_s("reduce_scatter", params * 4, Group(4, 2), links)


def test_fsdp_gathers_every_microbatch_but_keeps_the_root(llama, probes):
    step = estimate(llama, probes, dp=4, zero=3, microbatches=2).step
    by_name = {c.name: c for c in step.collectives}
    layers = probes.get(Share(1, 1, "none")).layer.params * 4 * 2  # 4 layers of bf16 weights
    assert by_name["weight all-gather (backward)"].nbytes == layers
    assert by_name["weight all-gather (forward)"].nbytes == (123456 + 2 * 256 * 64) * 2
    assert {c.count for c in step.collectives} == {2}


def test_model_flops_are_the_whole_models(llama, probes):
    ids = torch.zeros(1, SEQ, dtype=torch.long)
    whole = profile(llama, ids, labels=ids, use_cache=False, device="meta", backward=True, dtype=torch.bfloat16)
    found = estimate(llama, probes, dp=2, microbatches=3)
    assert found.model_flops == whole.flops * 3 * 2  # 3 microbatches on each of 2 data-parallel ranks


def test_context_parallel_ring_and_share(llama, probes):
    # each of 2 context-parallel ranks runs half of each sequence: what the model does on 16 tokens...
    halves = Probes(llama, token_inputs(llama), SEQ // 2, H100, torch.bfloat16).get(Share(1, 1, "none"))
    share = probes.get(Share(1, 1, "none", cp=2))
    assert share.layer.activations == halves.layer.activations
    # ...but its queries see the whole sequence: twice the attention of 16 tokens alone
    assert share.attention_s == pytest.approx(2 * halves.attention_s)
    step = estimate(llama, probes, dp=2, cp=2, microbatches=2, zero=1).step
    by_name = {c.name: c for c in step.collectives}
    ring = by_name["context-parallel ring (keys, values)"]
    # keys and values of 16 tokens, 4 key-value heads of 8, bf16: 2 * 16 * 4 * 8 * 2 bytes; passed on once forward
    # and twice backward (with their gradients) by each of 4 layers in each of 2 microbatches
    assert (ring.nbytes, ring.count, ring.group) == (2048, 3 * 1 * 4 * 2, 2)
    assert by_name["gradient reduce-scatter"].group == 4  # data and context parallel ranks hold the same weights


def test_a_sequence_context_parallelism_cannot_split(llama, probes):
    with pytest.raises(ProfilingError, match="a sequence of 32 does not split into 2 x cp = 6 equal chunks"):
        estimate(llama, probes, cp=3)


def test_interleaving_shrinks_the_bubble_by_vpp(llama, probes):
    plain = estimate(llama, probes, pp=2, microbatches=4).step
    interleaved = estimate(llama, probes, pp=2, vpp=2, microbatches=4).step
    # Narayanan et al. 2021, section 2.2.2: (pp - 1) / vpp microbatch times of bubble, and each microbatch crosses
    # vpp times as many stage boundaries ("the amount of communication also increases by v")
    assert interleaved.pp_comm_s == pytest.approx(2 * plain.pp_comm_s) and plain.pp_comm_s > 0
    sends = (interleaved.pp_comm_s - plain.pp_comm_s) / 4  # more per microbatch
    assert interleaved.bubble_s == pytest.approx((plain.bubble_s + sends) / 2)  # pp - 1 = 1 microbatch time
    assert interleaved.total_s == pytest.approx(plain.total_s + 4 * sends - plain.bubble_s + interleaved.bubble_s)
