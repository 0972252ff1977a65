"""What every calibration model shares: the context, the prepared inputs and observed
sites, row selection and the hand-set prior helpers (priors.models re-exports them)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


class CalibrationError(ValueError):
    """Data or settings a model cannot be fitted to: the message says what is missing."""


@dataclass(frozen=True)
class Context:
    """What a fit needs to know about the forecast, as plain values (no kernel imports).

    start: t = 0 of every model (the scenario's first month).
    regions: the scenario's region names (as in priors/data/regions.csv).
    hand_set: unconstrained (loc, scale) of the forecast parameters that the models use as
        priors (docs/model.md): log for positive parameters.
    compute_share: (region,) each region's share of installed compute at the start.
    demand_offset: (mean, sd) of the growth of token volume, per year at the start, that the
        forecast adds on top of enterprise demand growth (price response, agentic shift).
    cutoff: if set, fit only rows dated before it (backtests); later rows are predicted.
    """

    start: pd.Timestamp
    regions: tuple[str, ...]
    hand_set: dict = field(default_factory=dict)
    compute_share: np.ndarray | None = None
    demand_offset: tuple[float, float] = (0.0, 0.0)
    cutoff: pd.Timestamp | None = None

    def years(self, dates) -> np.ndarray:
        return ((pd.to_datetime(pd.Series(dates)) - self.start).dt.days / 365.25).to_numpy(np.float64)

    def train(self, dates) -> np.ndarray:
        if self.cutoff is None:
            return np.ones(len(dates), bool)
        return (pd.to_datetime(pd.Series(dates)) < self.cutoff).to_numpy()

    def prior(self, name: str, index: int | None = None) -> tuple[float, float]:
        if name not in self.hand_set:
            raise CalibrationError(f"no hand-set prior for {name!r} in the calibration context")
        loc, scale = (np.asarray(a, np.float64) for a in self.hand_set[name])
        if index is not None and loc.ndim:
            loc, scale = loc[index], scale[index]
        return float(np.mean(loc)), float(np.mean(scale))


@dataclass
class Site:
    """One observed site: its rows (date, t, series, label, y in model space, train), how
    model space maps back to the data's units (inverse: 'exp', 'sigmoid' or 'identity'),
    and the key of its observed values in the model's inputs."""

    rows: pd.DataFrame
    inverse: str
    units: str
    key: str = "y"


@dataclass
class Prepared:
    inputs: dict
    sites: dict[str, Site]
    info: dict = field(default_factory=dict)


def rows_of(data: pd.DataFrame, metrics) -> pd.DataFrame:
    """The observations of some metrics with a value (projections are never fitted)."""
    out = data[data["metric"].isin(list(metrics))]
    if "projection" in out.columns:
        out = out[~out["projection"].astype(bool)]
    return out[np.isfinite(out["value_num"].to_numpy(np.float64))]


def hand_set(name, loc_scale, transform="exp"):
    """A forecast parameter with its hand-set prior, non-centred: transform(loc + scale z),
    z ~ N(0, 1) sampled as "z_<name>", the value recorded as <name>. transform: "exp"
    (positive: lognormal), "sigmoid" (in [0, 1]: logit-normal) or "identity" (normal), as
    the parameter's support maps its unconstrained (loc, scale)."""
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    loc, scale = loc_scale
    z = numpyro.sample(f"z_{name}", dist.Normal(0.0, 1.0))
    u = loc + scale * z
    value = {"exp": jnp.exp, "sigmoid": jax.nn.sigmoid, "identity": lambda x: x}[transform](u)
    return numpyro.deterministic(name, value)


def lognormal(name, loc_scale):
    """A positive forecast parameter with its hand-set lognormal prior (hand_set)."""
    return hand_set(name, loc_scale, "exp")
