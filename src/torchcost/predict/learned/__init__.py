"""Learned op-time models for CPUs: per op class, a regressor of an op's time on this machine from the features
of its record, fitted on sampled ops that ``torchcost calibrate`` measures (see features, sampling, observe,
regression)."""

from torchcost.predict.learned.features import FEATURE_COUNT, features
from torchcost.predict.learned.regression import Check, Observation, OpTimeModel, held_out_check

__all__ = ["FEATURE_COUNT", "Check", "Observation", "OpTimeModel", "features", "held_out_check"]
