"""memory(): exact bytes on hand-made models, categories, views and in-place ops, meta against cpu, what-ifs."""

import copy

import pytest
import torch
from torch import nn

from torchcost.peak_memory import memory


def chain() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


PARAM_BYTES = (4 * 8 + 8 + 8 * 2 + 2) * 4  # 58 fp32 values = 232 bytes
X = torch.randn(3, 4)  # 12 fp32 values = 48 bytes


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_linear_chain_inference_by_hand(device):
    p = memory(chain(), X, device=device)
    # start: params 232 + input 48 = 280
    # addmm -> h1 (3, 8) = 96 bytes: 376; relu -> r (3, 8) = 96 bytes: 472 (the peak, h1 still referenced)
    # h1 freed; addmm -> y (3, 2) = 24 bytes: 400
    assert [point.total for point in p.timeline] == [280, 280, 376, 472, 376, 400]
    assert p.peak_bytes == 472
    assert p.breakdown == {
        "parameters": 232,
        "buffers": 0,
        "gradients": 0,
        "optimizer_state": 0,
        "activations": 0,
        "temporaries": 192,  # h1 and r
        "inputs_outputs": 48,  # x; y does not exist yet
        "workspace": 0,  # addmm and relu hold no buffer of their own
    }
    assert (p.peak_at.op, p.peak_at.module, p.peak_at.phase) == ("aten.relu", "1", "forward")
    assert p.timeline[-1].bytes["inputs_outputs"] == 48 + 24  # x and the output y
    assert p.device == device


@pytest.mark.parametrize(
    ("optimizer", "state"),
    [
        ("sgd", 0),
        ("sgd-momentum", PARAM_BYTES),  # one momentum buffer per parameter
        ("adam", 2 * PARAM_BYTES + 4 * 4),  # exp_avg and exp_avg_sq, plus a 4-byte fp32 step count per tensor (4)
        ("adamw", 2 * PARAM_BYTES + 4 * 4),
    ],
)
def test_training_step_breakdown(optimizer, state):
    p = memory(chain(), X, optimizer=optimizer, device="cpu")
    end_of_forward = [point for point in p.timeline if point.phase == "forward"][-1]
    # held for backward: r (3, 8) = 96 bytes, saved by relu (its result) and by the second addmm (its input);
    # h1 is not saved (relu's backward needs its result), x is an input, y and the loss are outputs
    assert end_of_forward.bytes["activations"] == 96
    assert end_of_forward.bytes["temporaries"] == 0
    after = p.timeline[-1].bytes
    assert after["gradients"] == PARAM_BYTES
    assert after["optimizer_state"] == state
    assert after["activations"] == 0  # autograd freed them in backward
    assert after["inputs_outputs"] == 48 + 24 + 4  # x, y and the scalar loss
    assert p.train and p.optimizer == optimizer
    assert any("steady-state" in note for note in p.notes)
    assert p.phase_peaks.keys() == {"forward", "backward", "optimizer"}
    assert [m.activation_bytes for m in p.modules] == [96, 0, 96, 0]  # (root), 0, 1 (the ReLU made r), 2


def test_optimizer_state_in_the_peak_grows_with_the_optimizer():
    peaks = {name: memory(chain(), X, optimizer=name, device="cpu").peak_bytes for name in ("sgd", "sgd-momentum")}
    assert peaks["sgd-momentum"] - peaks["sgd"] == PARAM_BYTES  # the momentum buffers are alive throughout


def test_forward_and_backward_without_optimizer():
    p = memory(chain(), X, train=True, device="cpu")
    assert p.optimizer is None and "optimizer" not in p.phase_peaks
    assert p.timeline[-1].bytes["gradients"] == PARAM_BYTES
    assert any("no optimizer step" in note for note in p.notes)


class Views(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.view(4, 3).t()[1:]  # views share x's storage: nothing new
        return y.unsqueeze(0).expand(5, 2, 4).contiguous()  # one new (5, 2, 4) fp32 storage = 160 bytes


def test_views_add_nothing_and_copies_do():
    p = memory(Views(), X, device="cpu")
    assert [point.total for point in p.timeline[:-1]] == [48] * (len(p.timeline) - 1)
    assert p.peak_bytes == 48 + 160
    assert p.timeline[-1].bytes["inputs_outputs"] == 48 + 160


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_in_place_relu_saves_one_activation(device):
    def net(inplace: bool) -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(inplace=inplace), nn.Linear(8, 2))

    out_of_place, in_place = (memory(net(flag), X, device=device) for flag in (False, True))
    assert out_of_place.peak_bytes == 472  # as in test_linear_chain_inference_by_hand
    # relu_ writes h1 in place: 280 + h1 96 = 376, then y (24 bytes) while h1 is still referenced: 400
    assert [point.total for point in in_place.timeline] == [280, 280, 376, 376, 376, 400]
    assert in_place.peak_bytes == 400 and in_place.peak_at.op == "aten.addmm"


def test_tied_weights_counted_once():
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(8, 8, bias=False)
            self.b = nn.Linear(8, 8, bias=False)
            self.b.weight = self.a.weight

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x))

    p = memory(Tied(), torch.randn(2, 8), device="meta")
    assert p.timeline[0].bytes["parameters"] == 64 * 4


def test_buffers_and_batch_norm_running_stats():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    p = memory(model, torch.randn(1, 3, 8, 8), device="cpu")
    assert p.timeline[0].bytes["buffers"] == 4 * 4 * 2 + 8  # running mean and var (fp32), num_batches_tracked (int64)


def small_gpt2() -> nn.Module:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=64, vocab_size=100)
    return transformers.GPT2LMHeadModel(config)


def timeline(p):
    return [(point.op, point.phase, point.module, point.bytes) for point in p.timeline]


@pytest.mark.parametrize("settings", [{}, {"optimizer": "adamw"}, {"optimizer": "sgd", "checkpoint": "h.*"}])
def test_meta_equals_cpu_on_a_transformer(settings):
    model = small_gpt2()
    ids = torch.randint(0, 100, (2, 16))
    on_meta = memory(model, ids, device="meta", **settings)
    on_cpu = memory(model, ids, device="cpu", **settings)
    assert timeline(on_meta) == timeline(on_cpu)
    assert on_meta.modules == on_cpu.modules


def test_meta_equals_cpu_on_a_convnet():
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18()
    x = torch.randn(2, 3, 32, 32)
    for settings in ({}, {"optimizer": "sgd-momentum"}):
        assert timeline(memory(model, x, device="meta", **settings)) == timeline(memory(model, x, **settings))


def test_autocast_on_meta_as_on_cpu():
    """bf16 autocast runs on meta too (fake CPU tensors). PyTorch's meta kernel for batch norm gives its
    statistics the input's dtype where the CPU kernel keeps fp32: 2 x 4 channels x 2 bytes apart per norm."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    x = torch.randn(2, 3, 8, 8)
    on_meta, on_cpu = (memory(model, x, optimizer="sgd", autocast="bf16", device=d) for d in ("meta", "cpu"))
    assert abs(on_meta.peak_bytes - on_cpu.peak_bytes) <= 16
    plain = memory(model, x, optimizer="sgd", device="cpu")
    casts = [point.op for point in on_cpu.timeline if point.op == "aten._to_copy"]
    assert casts and on_cpu.autocast == "bfloat16"
    assert on_cpu.breakdown != plain.breakdown


class Blocks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 32)) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = x + layer(x)
        return x


def test_checkpointing_keeps_only_block_inputs():
    torch.manual_seed(0)
    x = torch.randn(256, 32)
    plain = memory(Blocks(), x, optimizer="sgd", device="meta")
    checkpointed = memory(Blocks(), x, optimizer="sgd", checkpoint="layers.*", device="meta")

    def held(p):
        return [point for point in p.timeline if point.phase == "forward"][-1].bytes["activations"]

    # each block keeps its (256, 32) fp32 input (32,768 bytes) instead of its internals; the first block's
    # input is the model's input, and each residual sum but the last (the output) is the next block's input
    assert held(checkpointed) == 3 * 256 * 32 * 4
    assert held(plain) > held(checkpointed)
    assert checkpointed.peak_bytes < plain.peak_bytes
    assert checkpointed.checkpoint == "layers.*"


def test_the_model_is_left_untouched():
    model = chain()
    model.train(False)
    model[0].train(True)
    before = copy.deepcopy(model.state_dict())
    grad = torch.ones_like(model[2].bias)
    model[2].bias.grad = grad
    user_optimizer = torch.optim.AdamW(model.parameters(), lr=0.5)
    for device in ("cpu", "meta"):
        memory(model, X, optimizer=user_optimizer, device=device, checkpoint="0")
        memory(model, X, device=device)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert [m.training for m in model.modules()] == [False, True, False, False]
    assert model[2].bias.grad is grad and model[0].weight.grad is None
    assert user_optimizer.state == {}
    assert model[0].forward.__func__ is nn.Linear.forward  # no checkpoint wrapper left behind


def test_an_optimizer_instance_gives_its_class_and_settings():
    model = chain()
    p = memory(model, X, optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5), device="cpu")
    assert p.optimizer == "SGD"
    assert p.timeline[-1].bytes["optimizer_state"] == PARAM_BYTES


def test_optimizer_factory():
    p = memory(chain(), X, optimizer=lambda params: torch.optim.Adagrad(params), device="meta")
    assert p.timeline[-1].bytes["optimizer_state"] == PARAM_BYTES + 4 * 4  # sum per value, a step per tensor


def test_cuda_target_counts_allocator_blocks_and_the_cublas_workspace():
    p = memory(chain(), X, device="meta", target="cuda")
    # params: 4 tensors -> 4 blocks of 512 bytes; input 1 block; h1 and r 1 block each; and one cuBLAS workspace
    # (the forward's thread calls addmm), 32 MiB (compute capability unknown: the default of 9.x and later)
    assert p.peak_bytes == (4 + 1 + 2) * 512 + 32 * 2**20
    assert p.breakdown["library_workspace"] == 32 * 2**20
    # segments: the seven small blocks share one 2 MiB segment; the workspace (>= 10 MiB) gets exactly 32 MiB
    assert p.reserved_bytes == 2 * 2**20 + 32 * 2**20
    assert p.device_bytes == p.reserved_bytes + 512 * 2**20  # and the CUDA context allowance
    assert p.target == "cuda"


def test_cublas_workspace_follows_the_gpu_named():
    # an L4 (compute capability 8.9) takes the :4096:2:16:8 default: 2 x 4096 KiB + 8 x 16 KiB = 8,519,680 bytes
    p = memory(chain(), X, device="meta", gpu="l4")
    assert p.target == "cuda" and p.breakdown["library_workspace"] == 8_519_680
    # a training step calls cuBLAS from the caller's thread (forward) and autograd's (backward): two workspaces
    p = memory(chain(), X, device="meta", gpu="h100", optimizer="sgd")
    assert p.breakdown["library_workspace"] == 2 * 32 * 2**20


def test_adam_step_counts_stay_on_the_host_for_cuda():
    # Adam's state per parameter: exp_avg and exp_avg_sq (4 tensors of 8 to 128 bytes: one 512-byte block each)
    # and a step count, a host tensor for a CUDA model (not capturable, not fused)
    p = memory(chain(), X, device="meta", gpu="h100", optimizer="adam")
    assert p.timeline[0].bytes["optimizer_state"] == 2 * 4 * 512
    p = memory(chain(), X, device="meta", optimizer="adam")  # for a CPU: 2 x 232 bytes and four 4-byte steps
    assert p.timeline[0].bytes["optimizer_state"] == 2 * PARAM_BYTES + 4 * 4


def test_auto_falls_back_to_the_model_device_when_values_are_needed():
    class NeedsValues(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[x > 0].sum() * x  # a data-dependent shape

    p = memory(NeedsValues(), X)
    assert p.device == "cpu"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"optimizer": "lamb"}, "unknown optimizer 'lamb'; use one of sgd, sgd-momentum, adam, adamw"),
        ({"train": True, "loss": lambda out: out}, "it must return a scalar tensor"),
        ({"checkpoint": "layers.*"}, "checkpoint= applies to a training step"),
        ({"train": True, "checkpoint": "nothing.*"}, "no module path matches checkpoint pattern 'nothing.*'"),
        ({"autocast": "int8"}, "unknown autocast dtype 'int8'; use bf16 or fp16"),
        ({"target": "tpu"}, "unknown target 'tpu'"),
    ],
)
def test_bad_input_gets_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("*", r"\*")):
        memory(chain(), X, device="meta", **kwargs)


def test_a_model_that_does_not_train():
    model = chain().requires_grad_(False)
    with pytest.raises(ValueError, match="has no trainable parameters"):
        memory(model, X, train=True, device="meta")


def test_to_dict_and_repr():
    p = memory(chain(), X, optimizer="sgd", device="meta")
    data = p.to_dict()
    assert data["peak_bytes"] == p.peak_bytes == sum(data["breakdown"].values())
    assert len(data["timeline"]) == len(p.timeline) and "timeline" not in p.to_dict(timeline=False)
    assert data["peak_at"] == {"step": p.peak_at.step, "op": p.peak_at.op, "module": "-", "phase": "backward"} or (
        data["peak_at"]["phase"] in ("backward", "optimizer")
    )
    assert repr(p).startswith("MemoryProfile(Sequential, training step on meta: peak ") and "\n" not in repr(p)
    assert "<table>" in p._repr_html_()


def test_inputs_that_do_not_fit_are_not_retried_on_the_model_device(monkeypatch):
    from torchcost.errors import InputMismatchError
    from torchcost.peak_memory import estimate as module

    runs = []
    real = module.estimate
    monkeypatch.setattr(module, "estimate", lambda *args, **kwargs: runs.append(args[4]) or real(*args, **kwargs))
    with pytest.raises(InputMismatchError, match=r"module '0' \(Linear\) with input shapes \[3, 5\]"):
        memory(chain(), torch.randn(3, 5))  # 5 features where the first Linear takes 4
    assert runs == ["meta"]  # the CPU would fail the same way
