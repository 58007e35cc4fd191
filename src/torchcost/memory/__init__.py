"""Peak memory of inference and of a training step: lifetimes of storages tracked at the dispatch level."""

from torchcost.memory.estimate import memory
from torchcost.memory.profile import MemoryProfile, ModuleMemory, PeakAt, TimelinePoint

__all__ = ["MemoryProfile", "ModuleMemory", "PeakAt", "TimelinePoint", "memory"]
