"""The calibration record: what ``torchcost calibrate`` measured this machine to achieve (not what its spec
promises), cached per machine, device, thread count and torch version in the user's cache directory.

How it is measured lives with the models it feeds (``torchcost.predict.calibrate``); this is the plain record,
read by ``hardware("local")`` and the reports.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from torchcost.hardware.detect import cpu_model_name


@dataclass
class Calibration:
    """Achieved rates on one machine: FLOP/s for compute, bytes/s for bandwidth, seconds for overhead."""

    device: str
    device_name: str
    threads: int
    torch_version: str
    date: str
    matmul_flops: dict[str, float] = field(default_factory=dict)  # dtype -> FLOP/s
    matmul_n: int = 0  # the size of the square products matmul_flops were measured on (0: read from details)
    conv_flops: float = 0.0  # fitted over a suite of typical layers (CONV_SUITE), batch 1 and 8
    depthwise_conv_flops: float = 0.0  # fitted over DEPTHWISE_SUITE
    copy_bandwidth: float = 0.0  # bytes/s, read + write
    add_bandwidth: float = 0.0
    op_overhead_s: float = 0.0  # per op in a chain of tiny modules: dispatch, launch, module call
    class_overhead_s: dict[str, float] = field(default_factory=dict)  # fixed cost per op of conv, depthwise, matmul
    details: dict[str, str] = field(default_factory=dict)  # each benchmark's shape and time
    # learned op-time models (predict/learned): the measured samples they are fitted on, kept so that each
    # calibration extends the last one; the cost of a module call; the cache the features compare against
    observations: list[dict[str, Any]] = field(default_factory=list)
    module_call_s: float = 0.0
    cache_bytes: int = 0
    check: dict[str, Any] = field(default_factory=dict)  # held-out errors of the learned models
    # GPUs: the host's cost of issuing one op per host class (predict/host.py), and the device time of the
    # smallest kernel (back to back in a CUDA graph)
    host_s: dict[str, float] = field(default_factory=dict)
    kernel_floor_s: float = 0.0

    @property
    def bandwidth(self) -> float:
        return max(self.copy_bandwidth, self.add_bandwidth)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bandwidth": self.bandwidth}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Calibration:
        """A calibration from its JSON (fields a newer or older version wrote are ignored)."""
        known = {f.name for f in fields(Calibration)}
        return Calibration(**{key: value for key, value in data.items() if key in known})


def machine_key(device: str) -> str:
    """Calibrations are kept per machine, device, thread count and torch version."""
    name = torch.cuda.get_device_name() if device == "cuda" else cpu_model_name()
    raw = f"{platform.node()}|{name}|{device}|{torch.get_num_threads()}|{torch.__version__}"
    return hashlib.sha1(raw.encode()).hexdigest()[:12]


def cache_path(device: str) -> Path:
    root = Path(
        os.environ.get("TORCHCOST_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "torchcost"
    )
    return root.expanduser() / f"calibration-{device}-{machine_key(device)}.json"


def load_calibration(device: str) -> Calibration | None:
    path = cache_path(device)
    if not path.exists():
        return None
    return Calibration.from_dict(json.loads(path.read_text()))


def save_calibration(calibration: Calibration) -> Path:
    path = cache_path(calibration.device)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(calibration.to_dict(), indent=2))
    return path
