"""Rendering of profiles. Rendering never runs a model.

Loading this package installs how profiles, analyses, latencies and predictions show in ``print``, ``repr`` and
notebooks (``torchcost.display``): the data types never import their renderers."""

from torchcost import display
from torchcost.analysis import Analysis
from torchcost.measure.latency import Latency
from torchcost.multi_gpu.result import ParallelEstimate
from torchcost.predict import Prediction
from torchcost.records import Profile
from torchcost.report.multi_gpu import estimate_line, estimate_text
from torchcost.report.notebook import (
    latency_html,
    latency_line,
    prediction_html,
    prediction_line,
    profile_html,
    profile_line,
)
from torchcost.report.terminal import render, render_text

for _counted in (Profile, Analysis):
    display.install(_counted, text=render_text, line=profile_line, html=profile_html)
display.install(Latency, line=latency_line, html=latency_html)
display.install(Prediction, line=prediction_line, html=prediction_html)
display.install(ParallelEstimate, text=estimate_text, line=estimate_line)

__all__ = ["render", "render_text"]
