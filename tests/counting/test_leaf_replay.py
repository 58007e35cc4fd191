"""Leaf modules replayed whole on a lent meta copy (counting/leaf_replay.py): the same profile as running them."""

import pytest
import torch
import torchvision
from torch import nn

import torchcost
from tests.conftest import everything
from torchcost.counting import leaf_replay
from torchcost.meta_copies import META_COPIES


@pytest.fixture
def replays(monkeypatch):
    """How many leaf calls were replayed whole."""
    done = []
    replay = leaf_replay.LeafReplays.replay
    monkeypatch.setattr(leaf_replay.LeafReplays, "replay", lambda self, *a: done.append(1) or replay(self, *a))
    return done


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.up = nn.Linear(width, 2 * width)
        self.act = nn.GELU()
        self.down = nn.Linear(2 * width, width)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        return x + self.drop(self.down(self.act(self.up(self.norm(x)))))


@pytest.mark.parametrize(
    "build, size",
    [
        (lambda: torchvision.models.mobilenet_v3_small(), (1, 3, 64, 64)),
        (lambda: torchvision.models.shufflenet_v2_x0_5(), (2, 3, 64, 64)),
        (lambda: torchvision.models.resnet18(), (1, 3, 64, 64)),
        (lambda: nn.Sequential(Block(16), Block(16), nn.Linear(16, 4)), (3, 5, 16)),
    ],
    ids=["mobilenet_v3_small", "shufflenet_v2_x0_5", "resnet18", "mlp"],
)
def test_replayed_leaves_give_the_profile_a_run_gives(build, size, replays):
    model = build().eval()
    x = torch.randn(size)
    first = everything(torchcost.profile(model, x))
    later = [everything(torchcost.profile(model, x)) for _ in range(4)]
    assert replays  # from the third profile on, the copy is lent and its leaves replay
    assert all(p == first for p in later)
    # and as a fresh object of the same model, whose leaves never replay, counts it
    assert everything(torchcost.profile(build().eval(), x)) == first


PAD = [1]


class Padded(nn.Module):
    """Sets its convolution's padding from a global for each call, and puts the old value back."""

    def __init__(self) -> None:
        super().__init__()
        self.pre = nn.Conv2d(3, 3, 1)  # the padded one's input: of values unknown on meta, so it may replay
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        x = self.pre(x)
        kept = self.conv.padding
        self.conv.padding = (PAD[0], PAD[0])
        try:
            return self.conv(x)
        finally:
            self.conv.padding = kept


def test_a_field_changed_during_the_forward_is_not_replayed_over():
    model, x = Padded(), torch.randn(1, 3, 8, 8)
    PAD[0] = 1
    for _ in range(3):
        torchcost.profile(model, x)
    PAD[0] = 2
    try:
        changed = torchcost.profile(model, x)
    finally:
        PAD[0] = 1
    assert changed.records[-1].output_shapes == ((1, 4, 10, 10),)  # 8 + 2·2 − 3 + 1, not 8 + 2·1 − 3 + 1


def test_inputs_of_known_values_and_grad_are_not_replayed(replays):
    model = nn.Sequential(nn.Linear(4, 4))
    x = torch.randn(2, 4)
    for _ in range(4):
        torchcost.profile(model, x)  # the input's values are known on meta: the layer runs
    assert not replays
    p = torchcost.profile(model, x, backward=True)  # a backward copies afresh, and nothing replays
    assert not replays and {r.phase for r in p.records} == {"forward", "backward"}


def test_the_copy_is_left_as_it_was_made():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    x = torch.randn(1, 3, 8, 8)
    for _ in range(4):
        torchcost.profile(model, x)
    lent = META_COPIES._lent[model]
    assert all("forward" not in module.__dict__ for module in lent.modules)
    assert "forward" not in model[0].__dict__  # the user's model never had one


def test_meta_values_follow_the_same_ops_when_leaves_replay(monkeypatch, replays):
    from torchcost.emulate.meta_values import MetaValues

    followed = []
    follow = MetaValues.follow

    def spy(self, func, *args, **kwargs):
        changed = follow(self, func, *args, **kwargs)
        if changed:  # what the store may have learnt (an in-place ReLU marks its input's storage unknown)
            followed.append(str(func))
        return changed

    monkeypatch.setattr(MetaValues, "follow", spy)
    model, x = torchvision.models.shufflenet_v2_x0_5().eval(), torch.randn(1, 3, 64, 64)
    runs = []
    for _ in range(4):
        followed.clear()
        torchcost.profile(model, x)
        runs.append(list(followed))
    assert replays and "aten.relu_.default" in runs[0]
    assert runs[3] == runs[0]


def doubled(module, x):
    return nn.Conv2d.forward(module, x) * 2


def test_a_forward_set_on_the_module_itself_runs():
    import functools

    model = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Conv2d(3, 4, 3))
    model[1].forward = functools.partial(doubled, model[1])
    x = torch.randn(1, 3, 8, 8)
    profiles = [torchcost.profile(model, x) for _ in range(4)]
    assert META_COPIES.derived(model, META_COPIES._lent[model].copy) is not None  # lent: leaves could replay
    assert all([r.op for r in p.records] == ["aten.convolution", "aten.convolution", "aten.mul"] for p in profiles)


SEEN: list = []


class Looks(nn.Module):
    """Keeps what it is given (in a global: a field that changed would make its copy afresh): whether a view, of
    what, with which shape, strides and offset."""

    def forward(self, x):
        base = x._base
        SEEN.append((x.shape, x.stride(), x.storage_offset(), x._is_view(), None if base is None else base.shape))
        return x


def test_a_view_of_a_tensor_made_in_the_call_is_made_again(replays):
    # on 3-D input, a linear's output is a view of its matmul's 2-D output (the first one's input is of values known
    # on meta, so that one runs)
    model = nn.Sequential(nn.Linear(16, 16), nn.Linear(16, 32), Looks())
    x = torch.randn(2, 5, 16)
    SEEN.clear()
    profiles = [everything(torchcost.profile(model, x)) for _ in range(5)]
    assert replays
    assert SEEN[0] == (torch.Size([2, 5, 32]), (160, 32, 1), 0, True, torch.Size([10, 32]))
    assert len(SEEN) == 5 and all(seen == SEEN[0] for seen in SEEN)
    assert all(p == profiles[0] for p in profiles)


def test_registering_a_formula_forgets_the_calls_kept(replays):
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    x = torch.randn(1, 3, 16, 16)
    for _ in range(4):
        torchcost.profile(model, x)
    assert replays

    @torchcost.register(torch.ops.aten.relu, override=True)
    def tripled(call):
        return call.cost(flops=3 * call.output.numel())

    try:
        counted = torchcost.profile(model, x)
    finally:
        torchcost.unregister(torch.ops.aten.relu)  # relu is counted by the generic pointwise rule again
    assert [r.cost.flops for r in counted.records if r.op == "aten.relu"] == [3 * 8 * 14 * 14]  # 4704
