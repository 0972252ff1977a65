"""NUTS fits with several chains, arviz diagnostics and the convergence gate.

`fit(module, prepared)` runs NUTS on one model and returns a `Fit`: its arviz
InferenceData (posterior, sample_stats, observed_data, prior and posterior predictive) and
its diagnostics. A fit has converged when every latent and derived quantity has
r_hat <= 1.01, bulk and tail ESS >= 400, and no transition diverged (`Fit.problems` lists
what failed); an unconverged fit is not handed to the forecast unless the caller says so.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import arviz as az
import jax
import numpy as np
from numpyro.infer import MCMC, NUTS, Predictive

MAX_RHAT = 1.01
MIN_ESS = 400


@dataclass(frozen=True)
class Settings:
    chains: int = 4
    warmup: int = 500
    samples: int = 1000
    target_accept: float = 0.95
    max_tree_depth: int = 8
    prior_draws: int = 500
    seed: int = 0


@dataclass
class Fit:
    name: str
    idata: az.InferenceData
    samples: dict  # flat posterior samples (chain x draw first), numpy
    diagnostics: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def converged(self) -> bool:
        return not self.problems


def fit(module, prepared, settings: Settings = Settings(), progress=None) -> Fit:
    """Run NUTS on `module.model` with the prepared data, then its checks."""
    t0 = time.perf_counter()
    key = jax.random.key(settings.seed)
    k_prior, k_mcmc, k_post = jax.random.split(key, 3)
    kernel = NUTS(module.model, target_accept_prob=settings.target_accept, max_tree_depth=settings.max_tree_depth)
    mcmc = MCMC(kernel, num_warmup=settings.warmup, num_samples=settings.samples, num_chains=settings.chains,
                chain_method="vectorized" if jax.local_device_count() < settings.chains else "parallel",
                progress_bar=False)
    mcmc.run(k_mcmc, prepared.inputs, True, extra_fields=("diverging",))
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=False).items()}
    prior = Predictive(module.model, num_samples=settings.prior_draws)(k_prior, prepared.inputs, False)
    post = Predictive(module.model, posterior_samples=mcmc.get_samples())(k_post, prepared.inputs, False)
    sites = list(prepared.sites)
    idata = az.from_numpyro(
        mcmc,
        prior={k: np.asarray(v) for k, v in prior.items()},
        posterior_predictive={k: np.asarray(post[k]) for k in sites},
    )
    result = Fit(module.NAME, idata, samples, seconds=time.perf_counter() - t0)
    result.diagnostics, result.problems = diagnose(idata)
    return result


def diagnose(idata) -> tuple[dict, list[str]]:
    """(summary numbers, problems): r_hat, bulk and tail ESS over every posterior quantity
    (its worst element), and the number of divergent transitions."""
    post = idata.posterior
    names = [v for v in post.data_vars if post[v].dtype.kind == "f"]
    rhat = az.rhat(post, var_names=names)
    bulk = az.ess(post, var_names=names, method="bulk")
    tail = az.ess(post, var_names=names, method="tail")
    worst = {}
    for v in names:
        r = float(np.nanmax(rhat[v].values)) if rhat[v].size else np.nan
        b = float(np.nanmin(bulk[v].values)) if bulk[v].size else np.nan
        t = float(np.nanmin(tail[v].values)) if tail[v].size else np.nan
        worst[v] = (r, b, t)
    divergent = int(idata.sample_stats["diverging"].values.sum())
    problems = []
    for v, (r, b, t) in worst.items():
        if np.isnan(r):
            continue  # constant quantities (e.g. masked-out entries)
        if r > MAX_RHAT:
            problems.append(f"{v}: r_hat {r:.3f} > {MAX_RHAT}")
        if b < MIN_ESS:
            problems.append(f"{v}: bulk ESS {b:.0f} < {MIN_ESS}")
        if t < MIN_ESS:
            problems.append(f"{v}: tail ESS {t:.0f} < {MIN_ESS}")
    if divergent:
        problems.append(f"{divergent} divergent transition(s)")
    summary = {
        "max_rhat": max((r for r, _, _ in worst.values() if not np.isnan(r)), default=np.nan),
        "min_ess_bulk": min((b for _, b, _ in worst.values() if not np.isnan(b)), default=np.nan),
        "min_ess_tail": min((t for _, _, t in worst.values() if not np.isnan(t)), default=np.nan),
        "divergences": divergent,
    }
    return summary, problems
