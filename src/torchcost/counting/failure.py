"""What a failed forward says, for every tracked run (``profile()``, ``memory()``): where it failed (the innermost
running module and its input shapes), why (the first line of the error), and the fix, in one message."""

from __future__ import annotations

from torch import nn

from torchcost.counting.module_stack import ModuleStack
from torchcost.errors import ProfilingError, input_mismatch, needs_real_values


def forward_failure(model: nn.Module, stack: ModuleStack, exc: Exception, on_meta: bool, call: str) -> ProfilingError:
    """The error for ``exc``, raised by the forward of ``model`` while ``stack`` tracked it; ``call`` is the
    function the user called (``profile``, ``memory``), named in the hint for missing inputs."""
    where = f"the forward of {type(model).__name__}"
    if stack.forward and stack.forward[-1]:
        module = model.get_submodule(stack.forward[-1])
        shapes = ", ".join(str(list(s)) for s in stack.forward_inputs[-1]) or "(keyword inputs only)"
        where = f"module '{stack.forward[-1]}' ({type(module).__name__}) with input shapes {shapes}"
    failed = f"{where} failed: {type(exc).__name__}: {exc}\n  hint: "
    if isinstance(exc, TypeError) and "forward() missing" in str(exc):
        give = "give the example inputs its forward takes, "
        return ProfilingError(
            failed + give + f"e.g. {call}(model, torch.randn(1, 3, 224, 224))",
            cli=failed + give + "with --input-size or --kwargs-json",
        )
    if on_meta and needs_real_values(exc):
        why = "this model needs real data (a value-dependent branch or shape); run it on "
        return ProfilingError(failed + why + "device='cpu'", cli=failed + why + "--device cpu")
    return input_mismatch(where, exc, "the example inputs or input_size=", "--input-size")
