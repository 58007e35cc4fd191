"""Moved to :mod:`torchcost.peak_memory.memory_profile`; this import path keeps working for one release."""

from torchcost.errors import moved_module

moved_module(__name__, "torchcost.peak_memory.memory_profile")
