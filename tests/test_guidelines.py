import pytest

from torchcost.guidelines import GuidelineSettings, bottleneck_networks, channel_ratio_networks, run_guidelines
from torchcost.hardware import Hardware

TOY = Hardware("toy", "toy", "cpu", {"fp32": 1e12}, 100e9, None, 4, "test")


def test_channel_ratio_networks_have_near_equal_flops_and_growing_memory_access():
    (experiment,) = [
        e for e in run_guidelines(TOY, GuidelineSettings(size=8, blocks=1, min_time=0.01)) if e.key == "G1"
    ]
    flops = [row.flops for row in experiment.rows]
    assert max(flops) / min(flops) < 1.03
    # memory access of a 1x1 conv is h*w*(c1 + c2) + c1*c2 elements: least when c1 = c2 at equal c1*c2
    access = [row.memory_access for row in experiment.rows]
    assert access == sorted(access)


def test_quick_run_covers_the_four_experiments():
    experiments = run_guidelines(TOY, GuidelineSettings(size=8, blocks=1, min_time=0.01))
    assert [e.key for e in experiments] == ["G1", "G2", "G3", "G4"]
    for experiment in experiments:
        assert len(experiment.rows) >= 4
        assert all(row.measured_s > 0 and row.predicted_s > 0 for row in experiment.rows)


def test_bottleneck_variants_share_their_convolutions():
    nets = bottleneck_networks(blocks=1)
    assert [label for label, _, _ in nets] == ["ReLU + shortcut", "no ReLU", "no shortcut", "neither"]
    params = {sum(p.numel() for p in net.parameters()) for _, net, _ in nets}
    assert len(params) == 1


@pytest.mark.parametrize("blocks", [1, 3])
def test_networks_repeat_their_block(blocks):
    _, net, _ = channel_ratio_networks(blocks)[0]
    assert len(net) == blocks
