"""A model's meta copy lent again to its next profile while neither the model nor the copy changed; every change
gets a fresh copy, and the counts of a fresh start."""

import gc
import weakref

import pytest
import torch
from torch import nn

import torchcost
from torchcost.meta_copies import META_COPIES, CopyWatch
from torchcost.prepare import copy_to, prepare


@pytest.fixture(autouse=True)
def no_copies_kept():
    META_COPIES.clear()
    yield
    META_COPIES.clear()


def small_net():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))


X = torch.randn(2, 3, 8, 8)


def meta_copy(model, x=X, reuse=True):
    """The copy a profile would run, handed back at once as a profile hands it back after its run."""
    copy = prepare(model, (x,), {}, None, None, "meta", reuse_meta_copy=reuse).model
    META_COPIES.returned(model, copy)
    return copy


def fresh(model, x=X, **settings):
    """The profile with nothing kept from earlier calls."""
    META_COPIES.clear()
    found = torchcost.profile(model, x, **settings)
    META_COPIES.clear()
    return found


def test_an_unchanged_model_gets_the_same_copy_and_the_same_counts():
    model = small_net()
    first = torchcost.profile(model, X)
    copy = meta_copy(model)
    running = prepare(model, (X,), {}, None, None, "meta", reuse_meta_copy=True).model
    assert running is copy and meta_copy(model) is not copy  # lent to one run at a time (threads)
    META_COPIES.returned(model, running)
    for _ in range(3):  # lent, then lent with what was found of it
        assert torchcost.profile(model, X).to_dict() == first.to_dict()
    assert meta_copy(model) is copy
    assert meta_copy(model, reuse=False) is not copy  # only callers that hand the copy back borrow it


def edits():
    """Changes a user makes between two profiles, each of which changes the counts."""

    def replace_layer(model):
        model[4] = nn.Linear(8 * 6 * 6, 20)

    def set_field(model):
        model[2].inplace = True

    def cast(model):
        model.half()  # the same parameter objects, in place

    def freeze(model):
        model[4].weight.requires_grad_(False)

    def hook(model):
        model[2].register_forward_hook(lambda module, args, out: out * 2)

    def add_to_list(model):
        model.append(nn.ReLU())  # Sequential's table of children, changed in place

    return [replace_layer, set_field, cast, freeze, hook, add_to_list]


@pytest.mark.parametrize("edit", edits(), ids=lambda edit: edit.__name__)
def test_a_changed_model_gets_a_fresh_copy(edit):
    model = small_net()
    before = torchcost.profile(model, X)
    copy = meta_copy(model)
    edit(model)
    x = X.half() if edit.__name__ == "cast" else X
    after = torchcost.profile(model, x)
    assert meta_copy(model, x) is not copy
    assert after.to_dict() == fresh(model, x).to_dict()
    assert after.to_dict() != before.to_dict()


class CachesOnFirstCall(nn.Module):
    """Computes a table on its first call and keeps it on the module: a copy that ran once is not a fresh copy."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        if not hasattr(self, "table"):
            self.table = torch.ones(4, 4, device=x.device) @ torch.ones(4, 4, device=x.device)
        return self.lin(x) + self.table


def test_a_copy_that_a_run_changed_is_not_lent_again():
    model = CachesOnFirstCall()
    x = torch.randn(4, 4)
    first = torchcost.profile(model, x)
    again = torchcost.profile(model, x)
    assert "aten.mm" in [op.op for op in again.operators]  # the table, computed again
    assert again.to_dict() == first.to_dict()
    assert not hasattr(model, "table")


class Settings:
    """A plain object a module holds: changing it in place is invisible to a snapshot."""

    def __init__(self, repeats):
        self.repeats = repeats


class Repeats(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.settings = Settings(1)

    def forward(self, x):
        for _ in range(self.settings.repeats):
            x = self.lin(x)
        return x


def test_a_model_holding_other_objects_is_copied_every_time():
    model = Repeats()
    x = torch.randn(2, 4)
    once = torchcost.profile(model, x)
    model.settings.repeats = 3
    assert torchcost.profile(model, x).flops == 3 * once.flops
    assert meta_copy(model, x) is not meta_copy(model, x)


def test_backward_profiles_copy_afresh_and_leave_the_kept_copy_alone():
    model = small_net()
    torchcost.profile(model, X)
    copy = meta_copy(model)
    trained = torchcost.profile(model, X, backward=True)
    assert meta_copy(model) is copy and all(p.grad is None for p in copy.parameters())
    assert trained.to_dict() == fresh(model, backward=True).to_dict()


def test_a_kept_copy_goes_with_its_model():
    model = small_net()
    torchcost.profile(model, X)
    assert len(META_COPIES._lent) == 0  # a first profile keeps nothing
    torchcost.profile(model, X)
    assert len(META_COPIES._lent) == 1
    del model
    gc.collect()
    assert len(META_COPIES._lent) == 0


def watched(model):
    """The snapshots of ``model`` and of its meta copy (None when refused), and the copy."""
    watch = CopyWatch()
    copy = copy_to(model, torch.device("meta"), None, watch=watch)
    modules = [m for _, m in model.named_modules()]
    return watch.snapshots(modules, [*model.parameters(), *model.buffers()]), copy


def test_snapshots_refuse_values_they_cannot_watch():
    plain = nn.Linear(2, 2)
    assert watched(plain)[0] is not None
    assert watched(Repeats())[0] is None  # Settings
    plain.extra = torch.ones(2)  # a tensor that is neither a parameter nor a buffer
    assert watched(plain)[0] is None
    held = nn.Linear(2, 2)
    held.act = (lambda model: lambda x: x * model.weight.dtype.itemsize)(held)  # deepcopy hands it on as it is
    assert watched(held)[0] is None


def test_snapshots_see_containers_inside_containers():
    plain = nn.Linear(2, 2)
    plain.sizes = [[1, 2], (3, {"four": 4})]
    (read, made), copy = watched(plain)
    assert read.unchanged([plain], [plain.weight, plain.bias])
    assert made.unchanged([copy], [copy.weight, copy.bias])
    plain.sizes[1][1]["four"] = 5
    copy.sizes[0].append(3)
    assert not read.unchanged([plain], [plain.weight, plain.bias])
    assert not made.unchanged([copy], [copy.weight, copy.bias])


class Fill(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.fill = 1

    def forward(self, x):
        return self.lin(x) + torch.full(x.shape, self.fill, device=x.device)


def test_a_value_set_to_an_equal_one_of_another_type_gets_a_fresh_copy():
    model, x = Fill(), torch.randn(2, 8)
    for _ in range(3):
        torchcost.profile(model, x)
    model.fill = 1.0  # == 1, but the filled tensor is float32, not int64
    assert torchcost.profile(model, x).to_dict() == fresh(model, x).to_dict()


class CachesOnItsWeight(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        weight = self.lin.weight
        if not hasattr(weight, "transposed"):
            weight.transposed = weight.t().contiguous()
        return x @ weight.transposed


def test_a_copy_whose_weight_a_run_changed_is_not_lent_again():
    model, x = CachesOnItsWeight(), torch.randn(2, 8)
    counts = [torchcost.profile(model, x).to_dict() for _ in range(4)]
    assert all(found == counts[0] for found in counts)


def test_a_table_that_holds_itself_is_watched_once():
    model = small_net()
    model.settings = {"depth": 2}
    model.settings["self"] = model.settings
    for _ in range(3):
        torchcost.profile(model, X)
    lent = meta_copy(model)
    assert meta_copy(model) is lent
    model.settings["depth"] = 3
    assert meta_copy(model) is not lent


def test_a_hook_that_holds_its_model_does_not_keep_it_alive():
    def make():
        model = small_net()
        model[0].register_forward_hook(lambda module, args, out: None if model is None else out)
        return model

    model = make()
    for _ in range(3):
        torchcost.profile(model, X)
    gone = weakref.ref(model)
    del model
    gc.collect()
    assert gone() is None
