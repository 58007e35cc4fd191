"""Predicting time: the execution timeline (host and device), the GPU kernel models, the host's costs, the
learned CPU models, the rates of the roofline, and one taxonomy of operators."""

from torchcost.predict.predict import predict, profile_dtype
from torchcost.predict.prediction import EXECUTIONS, OpPrediction, Prediction
from torchcost.predict.roofline import Rates, rates_for

__all__ = ["EXECUTIONS", "OpPrediction", "Prediction", "Rates", "predict", "profile_dtype", "rates_for"]
