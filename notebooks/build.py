"""Write and execute the notebooks in this folder (their outputs are committed).

    python notebooks/build.py            # execute with the defaults (as committed)
    FORECAST_N=1000 python notebooks/build.py --check   # what the test suite does, no writing

Each notebook reads FORECAST_N (trajectories) from the environment, so the test suite runs
them small and quickly.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).parent


def md(text):
    return nbformat.v4.new_markdown_cell(text.strip())


def code(text):
    return nbformat.v4.new_code_cell(text.strip())


SETUP = code('''
import os
import forecast
N = int(os.environ.get("FORECAST_N", 20000))  # trajectories; the test suite sets a small number
''')

NOTEBOOKS = {
    "quickstart": [
        md("""
# Quick start: run a scenario, read its bands, plot them

`forecast.run` simulates trajectories of the access model (docs/model.md) and returns an
`xarray.Dataset` of uncertainty bands, means and exact probabilities per month.
"""),
        SETUP,
        code('''
ds = forecast.run("baseline", n_trajectories=N, seed=0)
ds
'''),
        md("Bands are per quantile; the median and 90% band of the North/South gap in January 2030:"),
        code('''
gap = ds["north_south_ratio"].sel(time="2030-01").squeeze()
print({float(q): round(float(v), 1) for q, v in zip(gap["quantile"].values, gap.values)})
print("P(gap wider than in the first month):", float(ds["north_south_ratio_p_widening"].sel(time="2030-01").squeeze()))
'''),
        md("""
Outputs with a point mass at zero (unmet demand, lag, priced out) come with `<name>_p_positive`:
read the median together with it.
"""),
        code('''
sel = dict(region="global_south", tier="consumer", time="2030-01")
print("median lag:", float(ds["capability_lag"].sel(sel).sel(quantile=0.5).squeeze()),
      "mean:", float(ds["capability_lag_mean"].sel(sel).squeeze()),
      "P(>0):", float(ds["capability_lag_p_positive"].sel(sel).squeeze()))
'''),
        code('''
from forecast import plots
fig = plots.fan_chart(ds, "price", {"tier": "consumer"}, "Consumer frontier price")
'''),
        code('''
fig = plots.small_multiples(ds, "power")
'''),
    ],
    "calibration": [
        md("""
# Calibration: fit, check, forecast from the posterior

`forecast calibrate` fits numpyro models to usage data (docs/calibration.md) and refuses a
fit that fails the arviz gate (r_hat <= 1.01, ESS >= 400, no divergences). Here the price
model alone, on the shipped data.
"""),
        SETUP,
        code('''
import numpyro
numpyro.set_host_device_count(4)
from priors.usage import shipped
from priors.fit import Settings
from forecast.calibrate import calibrate
data = shipped()
baseline = forecast.load("baseline", calibration="none")
idata, fits = calibrate(data, baseline, Settings(chains=4, warmup=500, samples=500), models=["prices"])
fit = fits["prices"]
print("converged:", fit.converged, fit.diagnostics)
'''),
        code('''
import arviz as az
az.summary(idata, var_names=["g_hw", "g_serve", "g_alg", "g_front"], kind="stats")
'''),
        md("Save the posterior and forecast from it (the parameters it fitted come from its draws):"),
        code('''
import tempfile
from pathlib import Path
from priors.posterior import save
path = Path(tempfile.mkdtemp()) / "posterior.nc"
save(idata, path)
sc = forecast.load("baseline", calibration=str(path))
print(sc.priors_source)
ds = forecast.run(sc, n_trajectories=N, seed=0)
print(ds["cost_frontier"].sel(quantile=0.5, time=["2027-01", "2030-01", "2035-01"]).values)
'''),
    ],
    "scenarios": [
        md("""
# Scenarios: compare policies with probabilities

`forecast.compare` runs scenarios on the same trajectories (common random numbers), so the
differences are paired and `P(higher)` is an exact count over trajectories.
"""),
        SETUP,
        code('''
ds = forecast.compare(["baseline", "moratorium", "sovereign_compute"], n_trajectories=N, seed=0)
for other in ds["compared"].values:
    p = ds["north_south_ratio_p_higher"].sel(compared=other, time="2030-01").item()
    print(f"P(North/South gap higher under {other} than baseline, 2030): {p:.2f}")
'''),
        code('''
from forecast import plots
fig = plots.fan_chart(ds, "tokens_per_capita", {"region": "global_south"}, "Global South frontier tokens per capita")
'''),
        code('''
fig = plots.difference_chart(ds, "north_south_ratio", "sovereign_compute")
'''),
        code('''
from forecast.report import tidy
tidy(ds).query("variable == 'price' and statistic == 'p_higher' and tier == 'consumer'").tail()
'''),
    ],
}


def build(name, cells, write=True, timeout=900):
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE.parent)}}
                   ).execute()
    if write:
        nbformat.write(nb, HERE / f"{name}.ipynb")
    return nb


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="execute without writing")
    ap.add_argument("names", nargs="*", default=list(NOTEBOOKS))
    args = ap.parse_args(argv)
    for name in args.names:
        build(name, NOTEBOOKS[name], write=not args.check)
        print(f"{name}: ok", file=sys.stderr)


if __name__ == "__main__":
    main()
