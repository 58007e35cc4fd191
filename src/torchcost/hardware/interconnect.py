"""``Interconnect``: how a node's GPUs are linked to each other (NVLink) and to other nodes (the network), per GPU
and per direction, from ``interconnects.toml``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torchcost.errors import ProfilingError
from torchcost.hardware.spec import packaged_table


@dataclass(frozen=True)
class Interconnect:
    """Links per GPU, one direction: ``nvlink`` inside a node, ``network`` between nodes (bytes/s)."""

    node_gpus: int
    nvlink: float
    network: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "node_gpus": self.node_gpus,
            "nvlink_bytes_per_s": self.nvlink,
            "network_bytes_per_s": self.network,
            "source": self.source,
        }


def _table() -> dict[str, dict[str, Any]]:
    return packaged_table("interconnects.toml")


def interconnect(key: str) -> Interconnect:
    """The links of the GPU whose spec-table key is ``key`` (``"h100-sxm"``)."""
    entry = _table().get(key)
    if entry is None:
        raise ProfilingError(
            f"no interconnect is known for {key!r}; multi-GPU estimates know {', '.join(_table())} "
            "(hardware/interconnects.toml)"
        )
    return Interconnect(int(entry["node_gpus"]), float(entry["nvlink"]), float(entry["network"]), entry["source"])
