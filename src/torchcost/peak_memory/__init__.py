"""Peak memory of inference and of a training step: lifetimes of storages tracked at the dispatch level."""

from torchcost.peak_memory.estimate import memory
from torchcost.peak_memory.memory_profile import MemoryProfile, ModuleMemory, PeakAt, TimelinePoint

__all__ = ["MemoryProfile", "ModuleMemory", "PeakAt", "TimelinePoint", "memory"]
