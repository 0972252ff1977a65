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
from forecast.present import plots
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
import warnings
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notebook bar, not installed
import numpyro
numpyro.set_host_device_count(4)
from priors.usage import shipped
from priors.fit import Settings
from forecast.analysis.calibrate import calibrate
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
from forecast.present import plots
fig = plots.fan_chart(ds, "tokens_per_capita", {"region": "global_south"}, "Global South frontier tokens per capita")
'''),
        code('''
fig = plots.difference_chart(ds, "north_south_ratio", "sovereign_compute")
'''),
        code('''
from forecast.present.report import tidy
tidy(ds).query("variable == 'price' and statistic == 'p_higher' and tier == 'consumer'").tail()
'''),
    ],
}

# The questions and sensitivity notebooks default to the size docs/answers.md is written at.
SETUP_SMALL = code('''
import os
import warnings
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notebook bar, not installed
import forecast
from forecast.present import plots
N = int(os.environ.get("FORECAST_N", 3000))  # trajectories per scenario; the test suite sets a small number
''')

NOTEBOOKS["questions"] = [
    md("""
# The four questions, each to its run, its figure and its finding

The source material asks four questions. Each section below runs the scenarios that answer
it (paired: the same trajectories under every scenario), draws the figure, and prints the
sentences `forecast.present.findings` writes from the exact probabilities. `forecast answers`
writes the same answers, at 3,000 trajectories per scenario, into docs/answers.md.
"""),
    SETUP_SMALL,
    md("""
## 1. Does scarcity plus security rationing open a lasting gap between trusted users and everyone else?

`trusted_gap`: months the public's best model trails the trusted tier's. `gap_persistence`:
1 once that gap has exceeded 6 months for 12 consecutive months, so its mean is the
probability of a lasting gap by that month.
"""),
    code('''
gap = forecast.compare(["baseline", "rationed_frontier"], n_trajectories=N, seed=0)
for s in gap["scenario"].values:
    lasting = gap["gap_persistence_mean"].sel(scenario=s, region="us", time="2035-01-01").item()
    median = gap["trusted_gap"].sel(scenario=s, region="us", time="2030-01-01", quantile=0.5).item()
    print(f"{s}: US public's gap in 2030 {median:.2f} months (median); P(lasting gap by 2035) = {lasting:.3f}")
fig = plots.fan_chart(gap, "trusted_gap", {"region": "us"}, "US public's gap behind the trusted tier, months")
'''),
    code('''
for f in forecast.findings(gap):
    if f.headline.name == "trusted_gap":
        print(f.text)
'''),
    md("""
## 2. How much does the agentic shift tighten the compute crunch, and who is priced out first?
"""),
    code('''
agentic = forecast.compare(["baseline", "agentic_surge"], n_trajectories=N, seed=0)
fig = plots.difference_chart(agentic, "unmet_share", "agentic_surge")
for f in forecast.findings(agentic):
    if f.headline.name in ("unmet_share", "price", "access_index"):
        print(f.text)
'''),
    code('''
base = agentic.sel(scenario="baseline")
priced = base["priced_out"].sel(tier="consumer", time="2030-01-01", quantile=0.5)
for region, value in zip(priced["region"].values, priced.values):
    print(f"{region}: {value:.1%} of adults priced out of the paid plan (median, 2030)")
'''),
    md("""
## 3. What do policies do to the gap?
"""),
    code('''
policies = forecast.compare(["baseline", "moratorium", "buildout", "sovereign_compute", "rationed_frontier"],
                            n_trajectories=N, seed=0)
fig = plots.fan_chart(policies, "north_south_ratio", title="North/South gap under each policy")
for f in forecast.findings(policies):
    if f.headline.name == "north_south_ratio":
        print(f.text)
'''),
    md("""
## 4. Is the North/South gap widening or closing, and with what odds?

`north_south_ratio_p_widening`: the probability that the ratio is above its value in the
run's first month.
"""),
    code('''
for year in ("2027", "2030", "2035"):
    p = policies["north_south_ratio_p_widening"].sel(scenario="baseline", time=f"{year}-01-01").item()
    band = policies["north_south_ratio"].sel(scenario="baseline", time=f"{year}-01-01", quantile=[0.05, 0.5, 0.95])
    lo, med, hi = (float(v) for v in band.values)
    print(f"{year}: ratio {med:.3g} [{lo:.3g}, {hi:.3g}], P(wider than at the start) = {p:.2f}")
fig = plots.fan_chart(policies, "north_south_ratio", scenario="baseline", title="North/South gap, baseline")
'''),
]

NOTEBOOKS["sensitivity"] = [
    md("""
# Sensitivity: which uncertain assumptions drive a metric

`forecast.analysis.sensitivity` estimates first-order and total Sobol' indices at every month from
`n` base samples (n x (groups + 2) trajectories), with bootstrap intervals; parameters are
grouped by name, each calibrated model is one group, and process noise (market shocks,
events) has groups of its own. See docs/sensitivity.md.
"""),
    SETUP_SMALL,
    code('''
n = 256 if N < 2000 else 2048  # base samples (a power of two)
sens = forecast.sensitivity("baseline", metrics=["north_south_ratio"], n=n, seed=0)
total = sens["north_south_ratio_total"].sel(time="2030-01-01")
first = sens["north_south_ratio_first"].sel(time="2030-01-01")
top = total.sortby(total, ascending=False)["parameter"].values[:8]
for name in top:
    print(f"{name:32s} total {total.sel(parameter=name).item():.2f}   first {first.sel(parameter=name).item():.2f}")
'''),
    code('''
fig = plots.tornado(sens, "north_south_ratio", year=2030)
'''),
    code('''
fig = plots.indices_over_time(sens, "north_south_ratio")
'''),
]


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
