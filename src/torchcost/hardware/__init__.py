"""What hardware can do: vendor specs (a data file), this machine's detected peak, calibrated rates."""

from torchcost.hardware.spec import Hardware, UnknownHardwareError, hardware, known_hardware

__all__ = ["Hardware", "UnknownHardwareError", "hardware", "known_hardware"]
