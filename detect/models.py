"""Per-resident anomaly model of whole days, river-style: `learn_one` a day's figures,
`score_one` a day (higher means more unusual); deciding what to do with a score is the rule's
business, not the model's.

The model is scikit-learn's IsolationForest over the resident's own recent days. Mind its
sign: `score_samples` is higher for normal points, so the score here is its negation. It is
refitted lazily, once `refit_every` new days have been learned (fitting costs ~50 ms, scoring
~3 ms), with a fixed seed, so a replay gives the same scores. `__init__` stores parameters
only; the fitted forest is never saved: the days it was fitted on are (`state`), with a
version that counts the days learned, and the same forest is rebuilt from them after a
restart.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

import numpy as np

from detect.baseline import robust_spread

if TYPE_CHECKING:
    from sklearn.ensemble import IsolationForest


class DayModel:
    def __init__(self, features: tuple[str, ...], window: int = 28, min_days: int = 14,
                 refit_every: int = 7, n_estimators: int = 50, seed: int = 0,
                 floors: dict[str, float] | None = None) -> None:
        self.features = features
        self.floors = floors or {}  # least spread per figure, for `explain`
        self.window = window
        self.min_days = min_days
        self.refit_every = refit_every
        self.n_estimators = n_estimators
        self.seed = seed
        self.days: list[list[float]] = []
        self.version = 0  # days learned, ever: what the model has seen
        self._forest: IsolationForest | None = None
        self._fitted_at = -1
        self._fitted_days: list[list[float]] = []
        self._limit = 0.0

    def _vector(self, x: dict[str, float]) -> list[float]:
        return [float(x[f]) for f in self.features]

    def learn_one(self, x: dict[str, float]) -> None:
        self.days.append(self._vector(x))
        del self.days[:-self.window]
        self.version += 1

    def ready(self) -> bool:
        return len(self.days) >= self.min_days

    def _fit(self) -> IsolationForest:
        stale = not self._fitted_days or self.version - self._fitted_at >= self.refit_every
        if stale:
            self._fitted_days = [list(d) for d in self.days]
            self._fitted_at = self.version
        if stale or self._forest is None:
            from sklearn.ensemble import IsolationForest  # slow to import: only when needed

            # After a restart the forest is rebuilt from the very days it was fitted on.
            data = np.array(self._fitted_days)
            self._forest = IsolationForest(n_estimators=self.n_estimators,
                                           random_state=self.seed).fit(data)
            # A day more unusual than nine in ten of the days it learned from. (Above every
            # one of them is too strict: on a few weeks of days the forest isolates its own
            # odd days about as fast as a truly strange one.)
            self._limit = float(np.quantile(-self._forest.score_samples(data), 0.9))
        return self._forest

    def score_one(self, x: dict[str, float]) -> float | None:
        if not self.ready():
            return None
        forest = self._fit()
        return float(-forest.score_samples(np.array([self._vector(x)]))[0])

    def limit(self) -> float:
        self._fit()
        return self._limit

    def explain(self, x: dict[str, float]) -> list[tuple[str, float, float, float]]:
        """(feature, value, usual median, robust z), most deviant first."""
        out = []
        for i, name in enumerate(self.features):
            column = [d[i] for d in self.days]
            median = statistics.median(column)
            z = (float(x[name]) - median) / robust_spread(column, self.floors.get(name, 1.0))
            out.append((name, float(x[name]), median, z))
        return sorted(out, key=lambda t: -abs(t[3]))

    def state(self) -> dict[str, Any]:
        return {"days": self.days, "version": self.version, "fitted_days": self._fitted_days,
                "fitted_at": self._fitted_at}

    def load(self, state: dict[str, Any]) -> None:
        self.days = [list(map(float, d)) for d in state.get("days", [])]
        self.version = int(state.get("version", len(self.days)))
        self._fitted_days = [list(map(float, d)) for d in state.get("fitted_days", [])]
        self._fitted_at = int(state.get("fitted_at", -1))
        self._forest = None
