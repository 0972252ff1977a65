"""The headline metrics: one registry of what the terminal summary, the report's tables,
its findings and the standard figures show, with the years and the number formats they
share (so the three never disagree about what a metric is called or how it is written)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import xarray as xr

YEARS = (2027, 2030, 2035)  # summary years (January)
FINDING_YEARS = (2030,)  # the year findings speak of


@dataclass(frozen=True)
class Headline:
    """One headline metric: an output variable at one selection.

    label: short, for table rows (at most 14 characters: the summary fits 80 columns; "GS":
    Global South consumers); title: for figures; phrase: the noun
    phrase of a finding; higher / lower: what a higher or lower value is called."""

    name: str
    sel: dict = field(default_factory=dict)
    label: str = ""
    title: str = ""
    phrase: str = ""
    higher: str = "higher"
    lower: str = "lower"

    @property
    def key(self) -> str:
        """A stable identifier (anchors, file stems): the name and the selected labels."""
        return "_".join([self.name] + [str(v) for v in self.sel.values()])


HEADLINES = (
    Headline("north_south_ratio", {}, "North/South", "North/South gap in capability-weighted access per capita",
             "the North/South gap in capability-weighted access per capita", "wider", "narrower"),
    Headline("access_gini", {}, "access Gini", "Inequality of capability-weighted access across regions",
             "the inequality of capability-weighted access across regions (Gini)", "higher", "lower"),
    Headline("access_index", {"region": "global_south"}, "access, GS", "Global South: capability-weighted access",
             "the Global South's capability-weighted access per person", "higher", "lower"),
    Headline("trusted_gap", {"region": "us"}, "trusted gap US", "US: months the public trails the trusted tier",
             "the US public's gap behind the trusted tier", "wider", "narrower"),
    Headline("unmet_share", {}, "rationed share", "Tokens rationed down the menu or unserved",
             "the share of wanted tokens not served at the model class chosen", "higher", "lower"),
    Headline("open_share", {"region": "global_south"}, "open share, GS", "Global South: open-model share of tokens",
             "the Global South's open-model share of tokens served", "higher", "lower"),
    Headline("price", {"tier": "consumer"}, "consumer $/1M", "Consumer frontier price",
             "the consumer price of frontier tokens", "higher", "lower"),
    Headline("capability_lag", {"region": "global_south", "tier": "consumer"}, "lag GS, months",
             "Global South consumers: months behind", "the Global South consumers' lag behind the frontier",
             "longer", "shorter"),
    Headline("priced_out", {"region": "global_south", "tier": "consumer"}, "priced out, GS",
             "Global South consumers priced out of the paid plan",
             "the share of Global South consumers priced out of the paid plan", "higher", "lower"),
    Headline("power", {"region": "us"}, "US power, GW", "US AI data-centre power capacity",
             "US AI power capacity", "higher", "lower"),
)
# Also tabled in the report (not a finding: an input more than an answer).
CONTEXT = (Headline("compute", {"region": "us"}, "US compute", "US AI compute", "US AI compute"),)


def years_present(ds, years=YEARS) -> list[int]:
    """Those of `years` whose January a results file simulates."""
    januaries = {int(str(t)[:4]) for t in ds["time"].values.astype("datetime64[M]").astype(str)
                 if str(t)[5:7] == "01"}
    return [y for y in years if y in januaries]


def fmt(x: float, digits: int = 3) -> str:
    """A number in at most `digits` significant digits, compact where large or tiny
    ("1.2e7", "1460", not "1.20e+07" or "1.46e+03"), "n/a" when not finite."""
    if not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    if 10**digits <= abs(x) < 1e4:
        return f"{x:.0f}"
    if 1e-3 <= abs(x) < 10**digits:
        return f"{x:.{digits}g}"
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    return f"{float(mantissa):.{digits}g}e{int(exponent)}"


def units_text(units: str, name: str = "") -> str:
    """Units as a reader wants them: a dimensionless share is a "share", the ratio a
    "ratio", the Gini an "index" (never "[1]")."""
    if units in ("1", ""):
        return {"north_south_ratio": "ratio", "access_gini": "index"}.get(name, "share")
    return units


def default_cell(ds: xr.Dataset, metric: str) -> dict:
    """The region/tier a figure or table shows for a metric with those dims: the key
    figures' choice (Global South consumers) where the file has it, else the first."""
    dims = [d for d in ("region", "tier") if d in ds[f"{metric}_total"].dims]
    for h in HEADLINES:  # the key figures (forecast.present.plots.KEY_FIGURES)
        if h.name == metric and all(k in ds.coords and v in ds.coords[k].values for k, v in h.sel.items()):
            return dict(h.sel)
    prefer = {"region": "global_south", "tier": "consumer"}
    return {d: prefer[d] if prefer[d] in ds.coords[d].values else str(ds.coords[d].values[0]) for d in dims}
