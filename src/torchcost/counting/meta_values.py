"""Moved to :mod:`torchcost.emulate.meta_values`; this import path keeps working for one release."""

from torchcost.errors import moved_module

moved_module(__name__, "torchcost.emulate.meta_values")
