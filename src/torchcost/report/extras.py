"""What a result may hold beyond counts, as the reports ask about it: are there per-op and per-module times,
the roofs of a prediction. Reports show a section only when the result holds its data."""

from __future__ import annotations

from dataclasses import dataclass

from torchcost.predict import Prediction
from torchcost.records import Profile


@dataclass(frozen=True)
class Roofs:
    """The two roofs of a roofline: compute (FLOP/s) and memory bandwidth (byte/s)."""

    name: str
    peak_flop_per_s: float
    bandwidth_byte_per_s: float

    @property
    def ridge(self) -> float:
        """Arithmetic intensity (FLOP/byte) where a kernel stops being memory-bound."""
        return self.peak_flop_per_s / self.bandwidth_byte_per_s


def has_op_times(profile: Profile) -> bool:
    return any(op.measured_s is not None for op in profile.operators)


def has_module_times(profile: Profile) -> bool:
    return any(module.measured_s is not None for module in profile.modules)


def roofs(prediction: Prediction | None) -> Roofs | None:
    """The matmul compute roof and the bandwidth roof of the prediction's hardware, when predicted."""
    if prediction is None:
        return None
    return Roofs(prediction.hardware, prediction.rates.compute["matmul"], prediction.rates.bandwidth)
