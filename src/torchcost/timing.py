"""Moved to :mod:`torchcost.measure.timing`; this import path keeps working for one release."""

from torchcost.errors import moved_module

moved_module(__name__, "torchcost.measure.timing")
