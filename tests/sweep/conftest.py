"""Search-space files for the sweep tests, written into a temporary folder."""

import textwrap
from pathlib import Path

import pytest

# Three small models and one that fails (a 3-channel input into a 4-channel convolution). MACs of
# conv(C_in -> C_out, 3x3) on 32x32 without padding: 30 * 30 * C_out * C_in * 9. With TORCHCOST_TEST_WAIT set,
# the widest one first sleeps, so that a sweep is still running when a test interrupts it.
SPACE_PY = textwrap.dedent(
    """
    import os
    import time

    import torch
    from torch import nn


    def conv(width):
        if width == 16 and os.environ.get("TORCHCOST_TEST_WAIT"):
            time.sleep(600)
        return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU())


    def widths():
        for width in (4, 8, 16):
            yield f"w{width}", (lambda w=width: conv(w)), torch.randn(1, 3, 32, 32)
        yield "wrong_channels", lambda: nn.Conv2d(4, 8, 3), torch.randn(1, 3, 32, 32)


    def not_a_space():
        return nn.Linear(2, 2)
    """
)

# Models that take their worker down with them, hang, or allocate past the memory guard (of 512 MiB).
TROUBLE_PY = textwrap.dedent(
    """
    import ctypes
    import time

    import torch
    from torch import nn


    def trouble():
        yield "segfaults", lambda: ctypes.string_at(0), torch.randn(1, 4)
        yield "hangs", lambda: time.sleep(600), torch.randn(1, 4)
        yield "allocates_1gib", lambda: nn.Linear(4, 2).to(torch.empty(2**28, device="cpu")), torch.randn(1, 4)
        yield "fine", lambda: nn.Linear(4, 2), torch.randn(1, 4)
    """
)


@pytest.fixture
def space_file(tmp_path: Path) -> Path:
    path = tmp_path / "space.py"
    path.write_text(SPACE_PY)
    return path


@pytest.fixture
def trouble_file(tmp_path: Path) -> Path:
    path = tmp_path / "trouble.py"
    path.write_text(TROUBLE_PY)
    return path
