"""What an optimizer keeps and moves per parameter, by its kind and the weights' precision.

State: Adam's two fp32 moments (8 bytes) or SGD's momentum (4), and an fp32 master copy of the weights (4) when
they are kept in 16 bits: Megatron-LM's 18 bytes per parameter are 2 (bf16 weight) + 4 (fp32 gradient) + 12.
A step reads the gradient, the moments and the fp32 weights and writes the moments and the fp32 weights, and a
16-bit copy of them when there is a master (the fused and foreach kernels touch each once).
"""

from __future__ import annotations

MOMENT_BYTES = {"adamw": 8, "adam": 8, "sgd-momentum": 4, "sgd": 0}
FP32 = 4


def state_bytes(optimizer: str, weight_bytes: int) -> int:
    """Optimizer state per parameter: its moments, and a master copy when the weights are below fp32."""
    return MOMENT_BYTES[optimizer] + (FP32 if weight_bytes < FP32 else 0)


def step_bytes(optimizer: str, weight_bytes: int, grad_bytes: int) -> int:
    """Bytes one optimizer step reads and writes per parameter."""
    moments, master = MOMENT_BYTES[optimizer], weight_bytes < FP32
    return grad_bytes + 2 * (moments + FP32) + (weight_bytes if master else 0)
