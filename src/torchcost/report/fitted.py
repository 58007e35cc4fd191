"""Moved to :mod:`torchcost.report.table_width`; this import path keeps working for one release."""

from torchcost.errors import moved_module

moved_module(__name__, "torchcost.report.table_width")
