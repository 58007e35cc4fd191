"""Where the time of ``profile(model, x)`` goes: the meta copy, the dispatch mode's Python per op, the module stack,
PyTorch's and the model's own Python, and building the report.

Each piece is timed by wrapping the function that does it (two ``time.perf_counter`` calls around each call, the
outermost call only for a function that calls itself), on a model profiled twice before ("warm": its meta copy
lent, its ops' signatures known) and on a fresh copy of it with what was learnt of signatures forgotten ("cold": the
copy made, each signature learnt), interleaved with the same profiles unwrapped. A wrapper costs its caller about a
microsecond: the instrumented profiles' median time over the plain ones', divided by the wrapped calls, is taken
out of each piece for the wrapped calls inside it, so that the pieces add up to the plain profile's time. The pieces:

- prepare: the model's copy lent (``lend``: its snapshots compared) or made (``copy_to``, and from a model's second
  profile its snapshots), the inputs moved to meta;
- tree facts: parameters, sizes and the module table of a copy not lent before;
- forward: the model run on meta under the counting mode, of which
  - dispatch: ``CountingMode.__torch_dispatch__``, split into the walk of each op's arguments (tensors and replay
    key), replayed outputs (empty meta tensors made from a signature's specs), new signatures (kernel, formula,
    bytes: ``_run``), meta values (asked whether any argument's values are known, and followed when one is or
    the op writes in place), records made, and the rest (look-ups, views made again, bookkeeping);
  - leaf modules replayed: calls of a lent copy's ``torch.nn`` leaf modules appended whole from an earlier call
    (``counting/leaf_replay.py``: their records, their output, in-place ops followed);
  - module stack: a module entered and left (paths, input and output shapes), from the stack's global forward hooks,
    or on a lent copy from forwards set on its modules (``ModuleStack.by_forwards``);
  - the rest: PyTorch's calls into Python for every op and module and the model's own Python;
- hand back: the copy's snapshot compared after the run;
- report: module and operator tables, sums;
- other: the rest of ``profile()`` (the meta-or-device choice, the model's state saved and restored).

Results go to bench/results/profile_cost_split.json; run on a quiet machine:

    .venv/bin/python bench/profile_cost_split.py
    .venv/bin/python bench/profile_cost_split.py --models resnet18 --repeats 3   # a check
"""

from __future__ import annotations

import copy
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from profile_cost import MODELS, built, environment, options, seconds, write_results

import torchcost
from torchcost import prepare, profiler
from torchcost.counting import mode as counting_mode
from torchcost.counting.leaf_replay import LeafReplays
from torchcost.counting.module_stack import ModuleStack
from torchcost.emulate.meta_values import MetaValues
from torchcost.meta_copies import META_COPIES

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "profile_cost_split.json"
REPEATS = 7

# piece -> (where its function lives, the function's name, the piece it runs inside)
PIECES: dict[str, tuple[Any, str, str | None]] = {
    "prepare": (profiler, "prepare", None),
    "prepare: lend": (META_COPIES, "lend", "prepare"),
    "prepare: copy": (prepare, "copy_to", "prepare"),
    "tree facts": (profiler, "_TreeFacts", None),
    "forward": (profiler, "_forward", None),
    "dispatch": (counting_mode.CountingMode, "__torch_dispatch__", "forward"),
    "dispatch: arguments walked": (counting_mode, "_walk", "dispatch"),
    "dispatch: outputs replayed": (counting_mode, "empty_meta", "dispatch"),
    "dispatch: new signatures": (counting_mode.CountingMode, "_run", "dispatch"),
    "dispatch: meta values": (MetaValues, "follow", "dispatch"),
    "dispatch: meta values asked": (MetaValues, "none_known", "dispatch"),
    "dispatch: records": (counting_mode.CountingMode, "_record", "dispatch"),
    "leaf modules replayed": (LeafReplays, "replay", "forward"),
    "module stack (enter)": (ModuleStack, "enter", "forward"),
    "module stack (leave)": (ModuleStack, "leave", "forward"),
    "hand back": (META_COPIES, "returned", None),
    "report": (profiler, "_build_profile", None),
}

ELSEWHERE = "calls outside their piece"  # the wrappers' calls that ran outside the piece they belong to
TOP = [piece for piece, (_, _, parent) in PIECES.items() if parent is None]  # what profile() itself calls


class Clocks:
    """The time and calls of each piece, from wrappers put in place for a block."""

    def __init__(self) -> None:
        self.time = dict.fromkeys(PIECES, 0.0)
        self.calls = dict.fromkeys([*PIECES, ELSEWHERE], 0)
        self.depth = dict.fromkeys(PIECES, 0)

    def wrap(self, piece: str, function: Callable[..., Any]) -> Callable[..., Any]:
        clock = time.perf_counter

        parent = PIECES[piece][2]

        def timed(*args: Any, **kwargs: Any) -> Any:
            if self.depth[piece]:  # a call inside a call of the same piece: counted by the outer one
                return function(*args, **kwargs)
            if parent is not None and not self.depth[parent]:  # run from elsewhere (meta values asked by a leaf
                self.calls[ELSEWHERE] += 1  # replay): its time stays with what runs it, inside the forward
                return function(*args, **kwargs)
            self.depth[piece] += 1
            began = clock()
            try:
                return function(*args, **kwargs)
            finally:
                self.time[piece] += clock() - began
                self.calls[piece] += 1
                self.depth[piece] -= 1

        return timed

    @contextmanager
    def installed(self) -> Iterator[None]:
        """The wrappers in place for the block; afterwards each owner holds what it held (an object's method, found
        on its class, leaves no attribute of its own behind)."""
        originals = {piece: vars(owner).get(name) for piece, (owner, name, _) in PIECES.items()}
        for piece, (owner, name, _) in PIECES.items():
            setattr(owner, name, self.wrap(piece, getattr(owner, name)))
        try:
            yield
        finally:
            for piece, (owner, name, _) in PIECES.items():
                if originals[piece] is None:
                    delattr(owner, name)
                else:
                    setattr(owner, name, originals[piece])

    def taken(self) -> tuple[dict[str, float], dict[str, int]]:
        """The time and calls of each piece so far; cleared for the next run."""
        taken = (self.time, self.calls)
        self.time, self.calls = dict.fromkeys(PIECES, 0.0), dict.fromkeys([*PIECES, ELSEWHERE], 0)
        return taken


def split(seconds_in: dict[str, float], calls: dict[str, int], total: float, overhead: float) -> dict[str, float]:
    """Each piece's seconds without the wrappers' cost (``overhead`` a call) for the wrapped calls inside it; the
    rests of the pieces that hold others, and of ``profile()``. The pieces add up to ``total`` less every call's
    wrapper cost."""
    inside = dict.fromkeys(PIECES, 0)  # wrapped calls made inside each piece
    inside["forward"] = calls[ELSEWHERE]
    for piece, (_, _, parent) in PIECES.items():
        while parent is not None:
            inside[parent] += calls[piece]
            parent = PIECES[parent][2]
    own = {piece: seconds_in[piece] - overhead * inside[piece] for piece in PIECES}
    out = dict(own)
    for parent in ("prepare", "dispatch"):
        children = [p for p, (_, _, up) in PIECES.items() if up == parent]
        out[f"{parent}: rest"] = own[parent] - sum(own[c] for c in children)
    below_forward = [p for p, (_, _, up) in PIECES.items() if up == "forward"]
    out["forward: PyTorch and the model"] = own["forward"] - sum(own[p] for p in below_forward)
    out["other"] = total - overhead * sum(calls.values()) - sum(own[p] for p in TOP)
    return out


def case(name: str, repeats: int) -> dict[str, Any]:
    model, x, _ = built(name)
    unseen = [copy.deepcopy(model) for _ in range(2 * repeats)]  # for the cold profiles, one each

    def profile_once(kind: str) -> float:
        target = model if kind == "warm" else unseen.pop()
        kept = dict(vars(counting_mode.REPLAYS))  # put back after: the warm calls keep what they learnt
        if kind == "cold":
            counting_mode.REPLAYS.clear()
        try:
            return seconds(lambda: torchcost.profile(target, x))
        finally:
            vars(counting_mode.REPLAYS).update(kept)

    for _ in range(3):  # the third on: the copy lent
        torchcost.profile(model, x)
    ops = len(torchcost.profile(model, x).records)
    plain: dict[str, list[float]] = {"warm": [], "cold": []}
    runs: dict[str, list[tuple[float, dict[str, float], dict[str, int]]]] = {"warm": [], "cold": []}
    clocks = Clocks()
    for _ in range(repeats):
        for kind in ("warm", "cold"):
            plain[kind].append(profile_once(kind))
        with clocks.installed():
            for kind in ("warm", "cold"):
                clocks.taken()
                total = profile_once(kind)
                runs[kind].append((total, *clocks.taken()))
    result: dict[str, Any] = {"model": name, "ops": ops}
    for kind in ("warm", "cold"):
        instrumented = statistics.median(total for total, _, _ in runs[kind])
        calls = statistics.median(sum(c.values()) for _, _, c in runs[kind])
        # what a wrapper cost its caller in this run: the instrumented profiles' extra time over their calls
        overhead = max(instrumented - statistics.median(plain[kind]), 0.0) / calls
        pieces = [split(*taken, total, overhead) for total, *taken in runs[kind]]
        result[kind] = {
            "profile_s": statistics.median(plain[kind]),
            "instrumented_s": instrumented,
            "wrapped_calls": calls,
            "wrapper_cost_s": overhead,
            "pieces_s": {piece: statistics.median(p[piece] for p in pieces) for piece in pieces[0]},
        }
    return result


def main() -> None:
    args = options(__doc__, MODELS, REPEATS, RESULTS)
    load = os.getloadavg()[0]
    cases = []
    for name in args.models:
        c = case(name, args.repeats)
        cases.append(c)
        warm = c["warm"]["pieces_s"]
        stack = warm["module stack (enter)"] + warm["module stack (leave)"]
        print(f"{name}: {c['ops']} ops, profile {c['warm']['profile_s'] * 1e3:.1f} ms (a wrapper cost "
              f"{c['warm']['wrapper_cost_s'] * 1e6:.2f} µs a call): dispatch {warm['dispatch'] * 1e3:.1f} ms "
              f"({warm['dispatch'] / c['ops'] * 1e6:.1f} µs an op), module stack {stack * 1e3:.1f} ms, PyTorch and the "
              f"model {warm['forward: PyTorch and the model'] * 1e3:.1f} ms, report {warm['report'] * 1e3:.1f} ms",
              flush=True)  # fmt: skip
    data = {
        "environment": environment(args.repeats, load, args.code),
        "cases": cases,
    }
    write_results(args.results, data)
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
