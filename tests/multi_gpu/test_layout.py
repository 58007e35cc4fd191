import pytest

from torchcost.errors import ProfilingError
from torchcost.multi_gpu.layout import Layout


def test_sizes():
    layout = Layout(dp=4, tp=8, pp=2, microbatch=2, microbatches=16)
    assert (layout.gpus, layout.global_batch) == (64, 128)  # 4*8*2 GPUs; 2*16*4 sequences
    assert layout.describe() == "dp 4, tp 8, pp 2; 16 x 2 sequences"


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (Layout(pp=3), "the model's 8 layers do not split into pp x vpp = 3 equal stages"),
        (Layout(pp=2, vpp=2, microbatches=3), r"needs microbatches \(3\) to be a multiple of pp \(2\)"),
        (Layout(sp=True), "sequence parallelism splits over the tensor-parallel ranks: give tp of 2 or more"),
        (Layout(zero=4), "zero=4: ZeRO stages are 0, 1, 2 and 3"),
        (Layout(recompute="some"), "recompute='some': give one of none, selective, full"),
        (Layout(dp=0), "dp=0: it must be 1 or more"),
    ],
)
def test_layouts_no_framework_runs_are_refused(layout, message):
    with pytest.raises(ProfilingError, match=message):
        layout.check(layers=8)
