"""Default inputs of transformers' time-series models (those whose main input is ``past_values``), made from the
config as the models' documentation describes them.

- lag-feature forecasters (Time Series Transformer, Informer, Autoformer: configs with ``lags_sequence``):
  ``past_values`` of ``context_length + max(lags_sequence)`` steps (the "past length" the model slices its lags
  from), ``past_time_features`` with ``num_time_features + num_dynamic_real_features`` values per step, an
  all-ones ``past_observed_mask``, the static features the config declares, and the prediction window
  (``future_values``, ``future_time_features`` of ``prediction_length`` steps), so that the decoder runs over the
  horizon as in training (without them it runs on one zero step);
- patch models (PatchTST, PatchTSMixer: configs with ``num_input_channels``): ``past_values`` of
  ``context_length`` steps and ``num_input_channels`` channels;
- univariate patch models (TimesFM): ``past_values`` of ``context_length`` steps, no padding
  (``past_values_padding`` all zeros) and frequency index 0 (``freq``, high frequency).
"""

from __future__ import annotations

from typing import Any

import torch

# Informer's and the Time Series Transformer's configuration docs build their example with prediction_length=12.
DOCUMENTED_HORIZON = 12


def derive_horizon(config: Any) -> dict[str, str]:
    """Set ``prediction_length`` (and ``context_length``, which the config defaults to it) where a time-series
    config leaves them unset, as the default configs of the lag-feature forecasters do: field -> how."""
    if not hasattr(config, "lags_sequence") or getattr(config, "prediction_length", 0) is not None:
        return {}
    config.prediction_length = DOCUMENTED_HORIZON
    derived = {"prediction_length": f"prediction_length = {DOCUMENTED_HORIZON} (its documentation's example horizon)"}
    if getattr(config, "context_length", None) is None:
        config.context_length = DOCUMENTED_HORIZON
        derived["context_length"] = "context_length = prediction_length (its documented default)"
    return derived


def series_inputs(config: Any, accepts: set[str], batch: int, generator: torch.Generator) -> tuple[dict[str, Any], str]:
    """The inputs of a model whose main input is ``past_values`` and a note saying what they are."""
    if getattr(config, "lags_sequence", None):
        return _lagged(config, accepts, batch, generator)
    length = int(config.context_length)
    channels = getattr(config, "num_input_channels", None)
    if isinstance(channels, int):
        values = torch.randn(batch, length, channels, generator=generator)
        return {"past_values": values}, f"{batch} random series of {length} steps and {channels} channel(s)"
    made: dict[str, Any] = {"past_values": torch.randn(batch, length, generator=generator)}
    if "past_values_padding" in accepts:
        made["past_values_padding"] = torch.zeros(batch, length, dtype=torch.long)
    if "freq" in accepts:
        made["freq"] = torch.zeros(batch, 1, dtype=torch.long)
    return made, f"{batch} random series of {length} steps"


def _lagged(config: Any, accepts: set[str], batch: int, generator: torch.Generator) -> tuple[dict[str, Any], str]:
    context, horizon = int(config.context_length), int(config.prediction_length)
    past = context + max(config.lags_sequence)
    variates = int(getattr(config, "input_size", 1) or 1)
    per_step = (variates,) if variates > 1 else ()
    time_features = int(getattr(config, "num_time_features", 0) or 0)
    time_features += int(getattr(config, "num_dynamic_real_features", 0) or 0)
    made: dict[str, Any] = {
        "past_values": torch.randn(batch, past, *per_step, generator=generator),
        "past_time_features": torch.randn(batch, past, time_features, generator=generator),
        "past_observed_mask": torch.ones(batch, past, *per_step),
        "future_values": torch.randn(batch, horizon, *per_step, generator=generator),
        "future_time_features": torch.randn(batch, horizon, time_features, generator=generator),
    }
    categorical = int(getattr(config, "num_static_categorical_features", 0) or 0)
    if categorical and "static_categorical_features" in accepts:
        columns = [torch.randint(0, max(1, int(c)), (batch, 1), generator=generator) for c in config.cardinality]
        made["static_categorical_features"] = torch.cat(columns, dim=1)
    real = int(getattr(config, "num_static_real_features", 0) or 0)
    if real and "static_real_features" in accepts:
        made["static_real_features"] = torch.randn(batch, real, generator=generator)
    note = (
        f"{batch} random series of {past} past steps (context {context} + largest lag {max(config.lags_sequence)})"
        f" and {horizon} future steps, {time_features} time feature(s) per step"
    )
    return made, note
