"""Rendering of profiles. Rendering never runs a model."""

from torchcost.report.terminal import render, render_text

__all__ = ["render", "render_text"]
