"""Stand-in measurements for report tests: the attributes the latency and roofline work will add to a
profile (see ``torchcost.report.extras``). The values are made up for the tests, not measured."""

from torchcost.records import Profile

FAKE_RATE = 1e9  # bytes per second: each op "takes" its memory access at this rate


def with_measurements(profile: Profile) -> Profile:
    profile.latency = {"median_s": 0.0125, "p90_s": 0.0131, "cv": 0.021, "device": "cpu"}  # type: ignore[attr-defined]
    for op in profile.operators:
        op.measured_s = op.memory_access.total / FAKE_RATE  # type: ignore[attr-defined]
    for module in profile.modules:
        module.measured_s = module.memory_access.total / FAKE_RATE  # type: ignore[attr-defined]
    profile.hardware = {"name": "test chip", "peak_flop_per_s": 1e12, "bandwidth_byte_per_s": 1e11}  # type: ignore[attr-defined]
    profile.findings = ["elementwise ops are 1% of FLOPs but 40% of measured time"]  # type: ignore[attr-defined]
    return profile
