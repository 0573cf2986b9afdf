"""Next-value forecasting on noisy multi-frequency series.

Every window comes from its own series: a sum of 2-3 sines with random frequencies, phases and
amplitudes, plus a small linear trend and gaussian noise. The target is the value right after the
48-step window. Because the frequencies change from window to window, the model has to infer the
components from the window itself and extrapolate them, which takes state; the noise is small so
that model quality, not the noise floor, decides the error.
"""

from __future__ import annotations

import numpy as np

from edgernn.data.builtin import numeric_splits, register
from edgernn.data.raw import RawData

_WINDOW = 48
_NOISE = 0.02  # std of the observation noise; its square is the best achievable mse
_SIZES = {"train": 5000, "valid": 500, "test": 1000}


def _series(rng: np.random.Generator) -> np.ndarray:
    """One series of ``_WINDOW + 1`` steps; the last step is the target."""
    t = np.arange(_WINDOW + 1, dtype=np.float64)
    components = int(rng.integers(2, 4))
    # Periods between 4 and 40 steps: all resolvable within one window.
    periods = rng.uniform(4.0, 40.0, size=components)
    phases = rng.uniform(0.0, 2 * np.pi, size=components)
    amplitudes = rng.uniform(0.2, 1.0, size=components)
    waves = amplitudes[:, None] * np.sin(
        2 * np.pi * t[None, :] / periods[:, None] + phases[:, None]
    )
    trend = rng.uniform(-0.01, 0.01) * t + rng.uniform(-0.5, 0.5)
    return waves.sum(axis=0) + trend + rng.normal(0.0, _NOISE, size=t.shape)


def _example(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    series = _series(rng).astype(np.float32)
    return series[:_WINDOW, None], series[_WINDOW:]


@register("forecast", "regress", "next value of noisy sums of 2-3 random sines (48-step windows)")
def generate(seed: int) -> RawData:
    """Windows ``x`` (48, 1) with ``y`` (1,) the next value of the same series."""
    splits = numeric_splits(seed, _SIZES, _example)
    return RawData(task="regress", tokens=None, **splits)
