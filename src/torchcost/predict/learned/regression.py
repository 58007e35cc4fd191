"""Per-class models of an op's time, fitted on measured samples in log space: ``log(seconds)`` from the features.

A closed form first: least squares of ``log(seconds)`` on log FLOPs, bytes and output size, which captures the
power laws (time ~ FLOPs^a bytes^b) that dominate every class. Then, where scikit-learn is installed
(``pip install 'torchcost[predict]'``) and a class has enough samples, gradient boosting on the closed form's
residuals, with every feature (shapes, working set against the cache).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

MIN_BOOSTED = 24  # fewer samples in a class: the closed form (boosting would follow the noise)
FOLDS = 5  # the held-out check's folds: each sample is predicted by models fitted on the other four fifths


@dataclass(frozen=True)
class Observation:
    """One measured sample: its class, its features (see features.py) and its median time."""

    op_class: str
    features: tuple[float, ...]
    seconds: float
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "op_class": self.op_class,
            "features": list(self.features),
            "seconds": self.seconds,
            "label": self.label,
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Observation:
        return Observation(data["op_class"], tuple(data["features"]), data["seconds"], data.get("label", ""))


class Regressor(Protocol):
    def predict(self, rows: Any) -> Any: ...


CLOSED_FORM_FEATURES = 4  # log FLOPs, log bytes read, log bytes written, log output elements
RIDGE = 1.0  # keeps the closed form's weights small where a class has few samples


class _LeastSquares:
    """log(seconds) = w . [the first features, 1], by ridge least squares (numpy): the power laws of time in
    FLOPs and bytes, and no more, which a handful of samples can pin down."""

    def __init__(self, rows: np.ndarray, targets: np.ndarray) -> None:
        design = self._design(rows)
        penalty = RIDGE * np.eye(design.shape[1])
        penalty[-1, -1] = 0.0  # the intercept is free
        self.weights = np.linalg.solve(design.T @ design + penalty, design.T @ targets)

    @staticmethod
    def _design(rows: Any) -> np.ndarray:
        rows = np.asarray(rows, dtype=float)[:, :CLOSED_FORM_FEATURES]
        return np.hstack([rows, np.ones((len(rows), 1))])

    def predict(self, rows: Any) -> Any:
        return self._design(rows) @ self.weights


class _Boosted:
    """The closed form, plus gradient-boosted trees on what it leaves (in log space): the power laws stay exact
    between samples, and the trees learn the steps a power law misses (tiling, caches, a kernel's switch)."""

    def __init__(self, rows: np.ndarray, targets: np.ndarray, trees: Any) -> None:
        self.line = _LeastSquares(rows, targets)
        self.trees = trees.fit(rows, targets - self.line.predict(rows))

    def predict(self, rows: Any) -> Any:
        return self.line.predict(rows) + self.trees.predict(np.asarray(rows, dtype=float))


def _fit(observations: Sequence[Observation]) -> Regressor:
    rows = np.array([o.features for o in observations], dtype=float)
    targets = np.log(np.array([o.seconds for o in observations]))
    if len(observations) >= MIN_BOOSTED:
        try:
            from sklearn.ensemble import GradientBoostingRegressor
        except ImportError:
            pass
        else:
            trees = GradientBoostingRegressor(
                n_estimators=200, max_depth=3, learning_rate=0.05, subsample=0.8, random_state=0
            )
            return _Boosted(rows, targets, trees)
    return _LeastSquares(rows, targets)


class OpTimeModel:
    """Predicts the time of an op of a class from its features; one regressor per class."""

    def __init__(self, observations: Sequence[Observation]) -> None:
        by_class = _by_class(observations)
        self.classes = sorted(by_class)
        self._models = {name: _fit(group) for name, group in by_class.items()}

    def seconds(self, op_class: str, features: Sequence[float]) -> float | None:
        """The predicted time; None for a class with no samples."""
        model = self._models.get(op_class)
        if model is None:
            return None
        return float(math.exp(model.predict(np.array([features], dtype=float))[0]))


@dataclass(frozen=True)
class Check:
    """How models fitted on other samples predict each held-out one: relative errors (predicted / measured - 1)."""

    errors: dict[str, list[float]]  # per class

    @property
    def all_errors(self) -> list[float]:
        return [e for group in self.errors.values() for e in group]

    @property
    def median_error(self) -> float:
        absolute = sorted(abs(e) for e in self.all_errors)
        return absolute[len(absolute) // 2] if absolute else 0.0

    def share_within(self, tolerance: float) -> float:
        errors = self.all_errors
        return sum(abs(e) <= tolerance for e in errors) / len(errors) if errors else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "median_abs_error": self.median_error,
            "within_10": self.share_within(0.10),
            "within_20": self.share_within(0.20),
            "per_class_median": {
                name: sorted(abs(e) for e in group)[len(group) // 2] for name, group in self.errors.items() if group
            },
            "samples": len(self.all_errors),
        }


def held_out_check(observations: Sequence[Observation], seed: int = 0) -> Check:
    """Every sample predicted by models fitted on the others of its class, in ``FOLDS`` folds (each class dealt
    round the folds in a random order): one error per sample, so the median moves little from one run to the next."""
    rng = random.Random(seed)
    by_class = _by_class(observations)
    folds: list[list[Observation]] = [[] for _ in range(FOLDS)]
    for group in by_class.values():
        if len(group) > 2:
            for i, observation in enumerate(rng.sample(group, len(group))):
                folds[i % FOLDS].append(observation)
    errors: dict[str, list[float]] = {}
    for held in folds:
        out = {id(o) for o in held}
        model = OpTimeModel([o for o in observations if id(o) not in out])
        for observation in held:
            predicted = model.seconds(observation.op_class, observation.features)
            if predicted is not None:
                errors.setdefault(observation.op_class, []).append(predicted / observation.seconds - 1)
    return Check(errors)


def _by_class(observations: Sequence[Observation]) -> dict[str, list[Observation]]:
    grouped: dict[str, list[Observation]] = {}
    for observation in observations:
        grouped.setdefault(observation.op_class, []).append(observation)
    return grouped
