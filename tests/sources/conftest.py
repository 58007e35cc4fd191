import textwrap
from pathlib import Path

import pytest

TINY_PY = textwrap.dedent(
    """
    import torch
    from torch import nn

    INPUT_SIZE = (1, 3, 8, 8)


    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.conv(x).mean((2, 3)))


    def build():
        return Tiny()


    def needs_width(width):
        return nn.Linear(width, width)


    def not_a_model():
        return 42
    """
)
# conv: output (1, 4, 6, 6) = 144 elements x (3 channels x 3 x 3) = 3888 MACs; head: 4 x 2 = 8 MACs
TINY_MACS = 144 * 27 + 8
TINY_PARAMS = (4 * 27 + 4) + (4 * 2 + 2)  # 122


@pytest.fixture
def tiny_py(tmp_path: Path) -> Path:
    """A model file written by the test: the source under test imports and runs it."""
    path = tmp_path / "tiny.py"
    path.write_text(TINY_PY)
    return path
