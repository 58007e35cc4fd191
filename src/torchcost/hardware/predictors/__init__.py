"""Learned op-time models: per op class, a regressor of an op's time on this machine from the features of its
record, fitted on sampled ops that ``torchcost calibrate`` measures (see features, sampling, learn, regression)."""

from torchcost.hardware.predictors.features import CLASSES, features, op_class
from torchcost.hardware.predictors.regression import Check, Observation, OpTimeModel, held_out_check

__all__ = ["CLASSES", "Check", "Observation", "OpTimeModel", "features", "held_out_check", "op_class"]
