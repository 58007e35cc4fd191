"""The module stack (counting/module_stack.py) followed by forwards set on a lent copy's modules: the same calls,
paths and failures as its global hooks find."""

import functools
import inspect

import pytest
import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook

import torchcost
from tests.conftest import everything
from torchcost.counting.module_stack import ModuleStack, followable
from torchcost.errors import ProfilingError
from torchcost.meta_copies import META_COPIES


@pytest.fixture
def ways(monkeypatch):
    """How each profile's module stack followed the modules: True for forwards, False for hooks."""
    seen = []
    enter = ModuleStack.__enter__

    def spy(self):
        stack = enter(self)
        seen.append(stack.by_forwards)
        return stack

    monkeypatch.setattr(ModuleStack, "__enter__", spy)
    return seen


SIGNATURES: list = []


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x, scale: float = 2.0):
        # what a forward that reads its own signature finds (as transformers' backbones do)
        SIGNATURES.append((str(inspect.signature(self.forward)), str(inspect.signature(self.conv.forward))))
        return self.conv(x) * scale


def plus_input(module, x):
    return Scaled.forward(module, x) + x


class Checkpointed(nn.Linear):
    """A ``__call__`` of its own, as transformers' decoder layers have, through ``nn.Module.__call__``."""

    def __call__(self, *args, **kwargs):
        return super().__call__(*args, **kwargs)


class Shortcut(nn.Linear):
    """A ``__call__`` of its own that runs the forward itself: no hook runs for it, and it is not on the stack."""

    def __call__(self, x):
        return self.forward(x)


class Tangled(nn.Module):
    """Calls a child's forward directly (no hook runs for it), calls one child twice, one of its own is given a
    forward on the object, and two have a ``__call__`` of their own."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.block = Scaled()
        self.shared = nn.BatchNorm2d(4)
        self.own = Scaled()
        self.own.forward = functools.partial(plus_input, self.own)  # type: ignore[method-assign]
        self.head = Checkpointed(4, 5)
        self.tail = Shortcut(5, 5)

    def forward(self, x):
        x = self.shared(self.stem(x))
        x = self.block.forward(x)  # directly: not on the stack
        x = self.shared(self.own(x))
        return self.tail(self.head(x.mean((2, 3))))


def test_a_lent_copy_is_followed_by_forwards_with_the_same_calls_and_paths(ways):
    model, x = Tangled().eval(), torch.randn(1, 3, 8, 8)
    SIGNATURES.clear()
    first = everything(torchcost.profile(model, x))
    later = [everything(torchcost.profile(model, x)) for _ in range(4)]
    conv = "(input: torch.Tensor) -> torch.Tensor"
    assert set(SIGNATURES) == {("(x, scale: float = 2.0)", conv), ("(x)", conv)}  # (own's: the user's partial)
    assert ways == [False, False, True, True, True]  # from the third profile on, the copy is lent
    assert all(p == first for p in later)
    calls = {name: n for name, n, *_ in first[4]}  # the module rows
    assert calls["block"] == 0 and calls["block.conv"] == 1 and calls["shared"] == 2 and calls["own"] == 1
    assert calls["head"] == 1 and calls["tail"] == 0
    assert model.own.forward.func is plus_input and "forward" not in model.block.__dict__  # the user's, untouched
    copy = META_COPIES._lent[model].copy  # and the copy's, as made
    assert copy.own.forward.func is plus_input and copy.own.forward.args[0] is copy.own
    assert [name for name, m in copy.named_modules() if "forward" in m.__dict__] == ["own"]


def test_a_global_hook_of_the_users_is_left_to_see_every_call(ways):
    model, x = Tangled().eval(), torch.randn(1, 3, 8, 8)
    seen = []
    handle = register_module_forward_hook(lambda module, args, out: seen.append(type(module).__name__))
    try:
        runs = [(everything(torchcost.profile(model, x)), seen.copy(), seen.clear()) for _ in range(4)]
    finally:
        handle.remove()
    assert not any(ways)  # theirs would run outside the forward set on a module: the hooks follow the modules
    assert all(r[:2] == runs[0][:2] for r in runs)
    assert runs[0][1].count("BatchNorm2d") == 2


FAIL = [False]


class Fails(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))

    def forward(self, x):
        if FAIL[0]:
            return self.inner[1](x.reshape(3, 8))
        return self.inner(x)


def test_a_failure_on_a_lent_copy_names_the_module_it_failed_in(ways):
    model, x = Fails(), torch.randn(6, 4)
    for _ in range(3):
        torchcost.profile(model, x)
    FAIL[0] = True
    try:
        with pytest.raises(ProfilingError, match=r"module 'inner\.1' \(Linear\) with input shapes \[3, 8\]"):
            torchcost.profile(model, x)
    finally:
        FAIL[0] = False
    assert ways[-1] is True
    assert everything(torchcost.profile(model, x)) == everything(torchcost.profile(Fails(), x))


class Property(nn.Module):
    @property
    def forward(self):
        return lambda x: x


@pytest.mark.parametrize(
    "module, expected",
    [
        (nn.Linear(2, 2), True),
        (Checkpointed(2, 2), True),
        (Property(), False),
    ],
    ids=["plain", "own __call__", "forward a property"],
)
def test_followable_asks_for_modules_called_as_nn_module_calls_them(module, expected):
    assert followable([nn.Identity(), module]) is expected


def test_a_module_with_a_hook_of_its_own_is_not_followable():
    hooked = nn.Linear(2, 2)
    hooked.register_forward_pre_hook(lambda module, args: None)
    assert followable([hooked]) is False
