"""Stand-in measurements for report tests: real Latency, Prediction and Finding objects with made-up numbers
(the reports must not depend on a timing run)."""

from torchcost.analysis import Analysis
from torchcost.explain import Finding
from torchcost.hardware import Hardware
from torchcost.measure.latency import BatchLatency, Latency
from torchcost.predict import predict
from torchcost.records import Profile

FAKE_RATE = 1e9  # bytes per second: each op "takes" its memory access at this rate
TEST_CHIP = Hardware("test", "test chip", "gpu", {"fp32": 1e12}, 1e11, 1e10, 4, "made up for tests")


def with_measurements(profile: Profile) -> Analysis:
    latency = Latency(
        "cpu",
        "test cpu",
        2,
        "float32",
        "test",
        None,
        by_batch=[BatchLatency(None, 0.0125, 0.0126, 0.0004, 0.0131, 0.0135, 0.021, 40, None)],
    )
    for op in profile.operators:
        op.measured_s = op.memory_access.total / FAKE_RATE
    for module in profile.modules:
        module.measured_s = module.memory_access.total / FAKE_RATE
    findings = [Finding("cheap_ops", "elementwise ops are 1% of FLOPs but 40% of measured time", 0.4)]
    return Analysis(profile, latency, predict(profile, TEST_CHIP), findings)
