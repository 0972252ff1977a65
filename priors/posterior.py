"""The fitted posterior as one arviz InferenceData file, its checks, plots and backtests.

File layout (netCDF4 via h5netcdf, written atomically):
    posterior          the table of forecast-parameter draws: one variable per parameter
                       named in attrs["kernel_params"], dims (chain, draw) or (chain, draw,
                       region), in the parameter's own units, NaN where no model informs
                       it; plus each model's low-dimensional latents as "<model>__<name>";
                       every variable with units and long_name attrs (the kernels' registry
                       for parameters, each model's LATENTS for latents), every dim labelled
                       (compute__designer: the designers, demand__series: the series, ...)
    sample_stats       "<model>__diverging"
    observed_data      "<model>__<site>" (model space), with coordinates "..._train", "..._date", "..._label"
    prior_predictive, posterior_predictive
                       "<model>__<site>", thinned to PREDICTIVE_DRAWS draws
attrs of posterior: kernel_params, converged (1/0), problems, diagnostics, start, regions,
fitted_against (the hand-set priors the table replaces), data (files, rows, sha256).
Reading the draw table needs only xarray (forecast.posterior), not arviz.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

KEEP_LATENT_SIZE = 32  # model latents with more elements per draw (per country...) are not saved
PREDICTIVE_DRAWS = 400
INVERSE = {"exp": np.exp, "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)), "identity": lambda x: x}


def build(fits: dict, prepared: dict, kernel: dict, ctx, attrs: dict, kernel_units: dict | None = None):
    """One InferenceData from per-model fits and the merged forecast-parameter draws.

    kernel_units: {parameter: (units, meaning)} of the forecast parameters (the kernels'
    registry, passed in by forecast.calibrate). Each model's latents carry the units and
    meaning its LATENTS table gives, their dims the labels its labels() gives (arviz's
    convention: a dim such as compute__designer has a coordinate naming each designer). A
    hand-set prior's non-centred normal "z_<name>" (priors.models.hand_set) needs no entry.
    DIM_NAMES (dims without a plate) and labels() are optional."""
    import arviz as az

    from priors.models import MODELS

    sizes = next(iter(fits.values())).idata.posterior.sizes
    n_chain, n_draw = sizes["chain"], sizes["draw"]
    post, stats, obs, prior_pp, post_pp = {}, {}, {}, {}, {}
    coords = {"chain": np.arange(n_chain), "draw": np.arange(n_draw), "region": list(ctx.regions)}
    for name, values in kernel.items():
        v = values.reshape((n_chain, n_draw) + values.shape[1:])
        dims = ("chain", "draw") + (("region",) if v.ndim == 3 else ())
        unit, doc = (kernel_units or {}).get(name, ("", ""))
        post[name] = xr.DataArray(v.astype(np.float64), dims=dims, attrs={"units": unit, "long_name": doc})
    for model, f in fits.items():
        p = f.idata.posterior
        module = MODELS[model]
        for v in p.data_vars:
            per_draw = int(np.prod(p[v].shape[2:], dtype=int))
            if per_draw <= KEEP_LATENT_SIZE and v not in kernel:
                unit, doc = module.LATENTS.get(v) or (("1 (standard normal)", f"{v[2:]}'s non-centred normal")
                                                      if v.startswith("z_") else ("", ""))
                renamed = getattr(module, "DIM_NAMES", {})
                da = _prefixed(p[v].rename({d: renamed[d] for d in p[v].dims if d in renamed}), model)
                post[f"{model}__{v}"] = da.assign_attrs(units=unit, long_name=doc)
                labels = module.labels(prepared[model]) if hasattr(module, "labels") else {}
                for d, names in labels.items():
                    if f"{model}__{d}" in da.dims:
                        coords[f"{model}__{d}"] = list(names)
        stats[f"{model}__diverging"] = f.idata.sample_stats["diverging"]
        _sites(model, f.idata, prepared[model], n_chain * n_draw, obs, prior_pp, post_pp)
    posterior = xr.Dataset(post, coords=coords, attrs=attrs)
    return az.InferenceData(
        posterior=posterior, sample_stats=xr.Dataset(stats), observed_data=xr.Dataset(obs),
        prior_predictive=xr.Dataset(prior_pp), posterior_predictive=xr.Dataset(post_pp),
    )


def _sites(model, idata, prepared, n_samples, obs, prior_pp, post_pp):
    """Each observation site of one model's fit: the observed values with their rows'
    coordinates into `obs`, and thinned prior and posterior predictive draws."""
    pp = idata.posterior_predictive
    pr = idata.prior_predictive if "prior_predictive" in idata.groups() else idata.prior
    step = max(1, n_samples // PREDICTIVE_DRAWS)
    for site_name, site in prepared.sites.items():
        key = f"{model}__{site_name}"
        dim = f"{key}_row"
        # The observation is the variable; its date, series, label and training flag are
        # coordinates of its rows (arviz's convention: az.plot_ppc pairs every observed_data
        # variable with a posterior_predictive one).
        obs[key] = xr.DataArray(site.rows["y"].to_numpy(np.float64), dims=(dim,),
                                coords={f"{key}_train": (dim, site.rows["train"].to_numpy()),
                                        f"{key}_date": (dim, pd.to_datetime(site.rows["date_parsed"]).to_numpy()),
                                        f"{key}_label": (dim, site.rows["label"].astype(str).to_numpy()),
                                        f"{key}_series": (dim, site.rows["series"].astype(str).to_numpy())},
                                attrs={"inverse": site.inverse, "data_units": site.units})
        flat = pp[site_name].stack(sample=("chain", "draw")).transpose("sample", ...).values[::step]
        post_pp[key] = xr.DataArray(flat[None].astype(np.float32), dims=("chain", "draw", dim))
        pflat = pr[site_name].stack(sample=("chain", "draw")).transpose("sample", ...).values
        prior_pp[key] = xr.DataArray(pflat[None, :PREDICTIVE_DRAWS].astype(np.float32), dims=("chain", "draw", dim))


def _prefixed(da: xr.DataArray, model: str) -> xr.DataArray:
    rename = {d: f"{model}__{d}" for d in da.dims if d not in ("chain", "draw")}
    da = da.rename(rename)
    return da.drop_vars([c for c in da.coords if c not in ("chain", "draw")])


def save(idata, path: str | os.PathLike) -> Path:
    """Write atomically: a temporary file in the same folder, renamed when complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".nc.tmp", dir=path.parent)
    os.close(fd)
    try:
        idata.to_netcdf(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def json_attr(value) -> str:
    return json.dumps(value, sort_keys=True, default=lambda x: x.item() if hasattr(x, "item") else str(x))


def coverage(idata, model: str, site: str, rows: str = "test") -> dict:
    """Share of observations inside the posterior predictive's central 50% and 90% bands.

    rows: 'test' (rows after the fit's cutoff, of series with at least one fitted row: a
    series first seen after the cutoff has no level to forecast from) or 'all'. Widths are
    the median 90% band in the data's units: a ratio upper/lower for log-space sites, a
    difference otherwise."""
    key = f"{model}__{site}"
    obs = idata.observed_data
    y = obs[key].values
    train = obs[f"{key}_train"].values
    if rows == "test":
        mask = ~train
        if f"{key}_series" in obs:
            seen = set(obs[f"{key}_series"].values[train])
            mask &= np.isin(obs[f"{key}_series"].values, list(seen))
    else:
        mask = np.ones_like(y, bool)
    draws = idata.posterior_predictive[key].values.reshape(-1, y.shape[0])[:, mask]
    y = y[mask]
    if y.size == 0:
        return {"n": 0, "in50": np.nan, "in90": np.nan, "width90": np.nan}
    q = np.quantile(draws, [0.05, 0.25, 0.75, 0.95], axis=0)
    inverse = idata.observed_data[key].attrs.get("inverse", "identity")
    lo, hi = INVERSE[inverse](q[0]), INVERSE[inverse](q[3])
    width = np.median(hi / lo) if inverse == "exp" else np.median(hi - lo)
    return {"n": int(y.size), "in50": float(np.mean((y >= q[1]) & (y <= q[2]))),
            "in90": float(np.mean((y >= q[0]) & (y <= q[3]))), "width90": float(width)}


def sites(idata) -> list[tuple[str, str]]:
    """(model, site) pairs in the file."""
    out = []
    for v in idata.observed_data.data_vars:
        if "__" in v and not v.endswith(("_train", "_date", "_label", "_series")):
            model, site = v.split("__", 1)
            out.append((model, site))
    return out


def plot_checks(idata, folder: str | os.PathLike) -> list[Path]:
    """One PNG per model: each observation against its prior (grey) and posterior (blue)
    predictive median and 90% interval, in the data's units; rows after a backtest cutoff
    in orange. Points on the diagonal are predicted exactly."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    by_model: dict[str, list[str]] = {}
    for model, site in sites(idata):
        by_model.setdefault(model, []).append(site)
    written = []
    for model, names in by_model.items():
        fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 5), squeeze=False)
        for ax, site in zip(axes[0], names):
            key = f"{model}__{site}"
            da = idata.observed_data[key]
            inv = INVERSE[da.attrs.get("inverse", "identity")]
            y = inv(da.values)
            train = idata.observed_data[f"{key}_train"].values
            for group, color, label, off in (("prior_predictive", "0.7", "prior predictive", 0.0),
                                             ("posterior_predictive", "tab:blue", "posterior predictive", 0.0)):
                d = idata[group][key].values.reshape(-1, y.size)
                q = inv(np.quantile(d, [0.05, 0.5, 0.95], axis=0))
                ax.errorbar(y, q[1], yerr=[q[1] - q[0], q[2] - q[1]], fmt="o", ms=3, color=color, alpha=0.6,
                            elinewidth=0.8, label=label)
            if (~train).any():
                d = idata["posterior_predictive"][key].values.reshape(-1, y.size)
                q = inv(np.quantile(d[:, ~train], [0.05, 0.5, 0.95], axis=0))
                ax.errorbar(y[~train], q[1], yerr=[q[1] - q[0], q[2] - q[1]], fmt="o", ms=3, color="tab:orange",
                            elinewidth=0.8, label="after the cutoff (not fitted)")
            lims = [np.nanmin(y) * (0.5 if inv is np.exp else 1), np.nanmax(y) * (2 if inv is np.exp else 1)]
            ax.plot(lims, lims, "k--", lw=0.8)
            if inv is np.exp:
                ax.set_xscale("log")
                ax.set_yscale("log")
            ax.set_xlabel(f"observed ({da.attrs.get('data_units', '')})")
            ax.set_ylabel("predicted: median and 90% interval")
            ax.set_title(f"{model}: {site}")
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = folder / f"calibration_{model}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written
