import torch
from torch import nn

from torchcost.params import count_params, members, named_modules, size_bytes, size_if


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)  # 40
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight  # shared, counted once


def test_tied_weights_counted_once():
    counts = count_params(Tied())
    assert counts.total == 40
    assert counts.shared == 40  # the head's use of the embedding would add 40 if counted separately


def test_trainable_frozen_and_buffers():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))  # 12 + 3, and 3 + 3 affine
    model[0].weight.requires_grad_(False)
    counts = count_params(model)
    assert (counts.total, counts.trainable, counts.frozen) == (21, 9, 12)
    assert counts.buffers == 3 + 3 + 1  # running mean, running var, num_batches_tracked


def test_size_at_real_and_what_if_dtypes():
    model = nn.Linear(256, 1000).half()  # 257,000 parameters at 2 bytes
    assert size_bytes(model) == 514_000
    sizes = size_if(model)
    assert sizes["fp32"] == 1_028_000
    assert sizes["int8"] == 257_000
    assert sizes["int4"] == 128_500


def test_integer_buffers_keep_their_size():
    bn = nn.BatchNorm1d(2)  # 4 float parameters, 4 float buffer elements, one int64 counter
    assert size_if(bn)["int8"] == 8 + 8


def test_meta_model_counts_without_memory():
    with torch.device("meta"):
        model = nn.Linear(100_000, 100_000)
    assert count_params(model).total == 100_000 * 100_000 + 100_000


def test_params_per_module_equals_each_subtree_counted_alone():
    from torchcost.params import params_per_module, unique_parameters

    shared = nn.Linear(3, 3)  # 12 parameters, registered under two parents
    model = nn.Sequential(nn.Sequential(shared, nn.Linear(3, 2)), nn.Sequential(shared, nn.ReLU()), nn.Linear(2, 3))
    model[2].weight = nn.Parameter(model[0][1].weight.detach().t().clone())
    model[0][1].requires_grad_(False)
    tied = nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 5, bias=False))
    tied[1].weight = tied[0].weight
    for m in (model, tied):
        expected = {name: sum(p.numel() for p in unique_parameters(sub)) for name, sub in m.named_modules()}
        assert params_per_module(m) == expected
    # by hand: root 12 + (6 + 2) + (6 + 3) = 29; first branch 12 + 8 = 20; second 12; tied root 15 once
    assert params_per_module(model)[""] == 29 and params_per_module(model)["0"] == 20
    assert params_per_module(model)["1"] == 12 and params_per_module(tied)[""] == 15


def test_named_modules_walks_as_pytorch_does():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(
        nn.Sequential(shared, nn.ReLU()), nn.ModuleList([shared, nn.Sequential()]), nn.ModuleDict({"head": shared})
    )
    model.add_module("missing", None)
    for remove_duplicate in (True, False):
        ours = [(name, id(m)) for name, m in named_modules(model, remove_duplicate)]
        theirs = [(name, id(m)) for name, m in model.named_modules(remove_duplicate=remove_duplicate)]
        assert ours == theirs
    assert members(model, "_parameters") == list(model.parameters())
