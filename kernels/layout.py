"""The outputs and where each lies in a month's flat vector of series.

`OUTPUTS` says what each output is (name, dims, log scale, units); `SeriesLayout` is the one
index authority for the flat (series,) vector a month's outputs are raveled into, in OUTPUTS
order: the kernels, the engine, the analysis and the tests read offsets, sizes, masks and
shapes from it and compute none of their own. With several scenarios compared, the vector
holds one block of every output per scenario, then one block of paired differences per
scenario after the first.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

from kernels import menu

N_TIERS = 3  # trusted, enterprise, consumer: priority order


class OutputSpec(NamedTuple):
    name: str
    dims: str  # "", "region", "tier", "region,tier", "tier,class" or "region,tier,class"
    log_scale: bool  # bands are resolved in log space (non-negative quantities spanning
    # orders of magnitude; exact zeros are a point mass counted apart)
    units: str
    long_name: str


OUTPUTS: tuple[OutputSpec, ...] = (
    OutputSpec("compute", "region", True, "H100e", "installed AI compute"),
    OutputSpec("power", "region", True, "GW", "AI data-centre power capacity"),
    OutputSpec("capex", "region", True, "USD billion per year",
               "the month's spend on AI hardware and data-centre facilities, annualised"),
    OutputSpec("cost_frontier", "", True, "USD per 1M tokens", "cost of serving frontier tokens"),
    OutputSpec("cost_fixed_capability", "", True, "USD per 1M tokens", "cost of the start's frontier capability"),
    OutputSpec("cost_floor", "", True, "USD per 1M tokens",
               "floor cost of the start's frontier capability (hardware and energy)"),
    OutputSpec("price", "tier", True, "USD per 1M tokens", "list price of frontier tokens (sticky, bounded by substitution)"),
    OutputSpec("class_price", "tier,class", True, "USD per 1M tokens",
               "list price of each model class (sticky; the frontier's at most premium_max times the mid class's)"),
    OutputSpec("demand_tokens", "region,tier", True, "tokens per month",
               "tokens wanted, every class together (free users up to their allowance)"),
    OutputSpec("class_tokens", "region,tier,class", True, "tokens per month", "tokens served, by model class"),
    OutputSpec("frontier_tokens", "region,tier", True, "tokens per month", "frontier-class tokens served"),
    OutputSpec("lagging_tokens", "region,tier", True, "tokens per month",
               "mid- and open-class tokens served (class_tokens summed over the lagging classes)"),
    OutputSpec("tokens_per_capita", "region", True, "tokens per person per month",
               "frontier tokens served per working-age person"),
    OutputSpec("access_index", "region", True, "capability-weighted tokens per person per month",
               "tokens served per working-age person, every class, each weighted 2^(-lag / capability_halflife)"),
    OutputSpec("north_south_ratio", "", True, "1",
               "Global North over Global South capability-weighted access per person"),
    OutputSpec("access_gini", "", False, "1",
               "population-weighted Gini of access_index across regions"),
    OutputSpec("unmet_share", "", True, "1",
               "share of wanted tokens not served at the class chosen (rationed down the menu or unserved)"),
    OutputSpec("capability_lag", "region,tier", True, "months",
               "months behind the frontier of the tokens served (token-weighted; where none are, "
               "the best class on offer)"),
    OutputSpec("trusted_gap", "region", False, "months",
               "months the public's best model on offer trails the trusted tier's (staged release, restrictions)"),
    OutputSpec("gap_persistence", "region", False, "1",
               "1 once the trusted gap has exceeded gap_threshold for gap_duration consecutive months "
               "(its mean is the probability)"),
    OutputSpec("priced_out", "region,tier", True, "1",
               "share of adults priced out of the frontier (trusted, enterprise) or of the paid plan (consumer)"),
    OutputSpec("unserved_share", "region,tier", True, "1",
               "share of wanted tokens served at no class at all (consumers: adopters with no service)"),
    OutputSpec("free_share", "region", False, "1", "share of consumer users on the free tier only"),
    OutputSpec("open_share", "region", False, "1", "open-class share of the tokens served in the region"),
    OutputSpec("adoption", "region", False, "1", "share of the working-age population using generative AI"),
    OutputSpec("adoption_observed", "region", False, "1",
               "a published adoption figure: adoption with measurement noise (a new observation's band)"),
    OutputSpec("compute_observed", "", True, "H100e",
               "a published estimate of the world's AI compute stock: all regions' compute with measurement noise"),
    OutputSpec("tokens_observed", "", True, "tokens per month",
               "a published provider token volume: its level at the start grown as all tokens served, with its scatter"),
    OutputSpec("list_price_observed", "", True, "USD per 1M tokens",
               "the list price of a model released that month: the top decile moved as the frontier cost, "
               "with the spread of released models"),
    OutputSpec("chip_power_observed", "", True, "GW",
               "a published estimate of the world's installed AI chip power: the installed hardware's draw over "
               "the facility overhead, with measurement noise"),
)
OUTPUT_BY_NAME = {o.name: o for o in OUTPUTS}
# Outputs above zero in every world: their paired differences are log ratios (read as "x
# baseline"). Every other output, those with a point mass at zero among them (lags, shares,
# tokens a restriction withholds), is compared by its plain difference, in its own units.
RATIO_OUTPUTS = frozenset({"compute", "power", "cost_frontier", "cost_fixed_capability", "cost_floor", "price",
                           "class_price", "access_index",
                           "north_south_ratio", "compute_observed", "tokens_observed", "list_price_observed",
                           "chip_power_observed"})


@dataclass(frozen=True)
class SeriesLayout:
    """Where each output lies in a month's flattened outputs, for `n_regions` regions and
    `n_scenarios` scenarios (blocks: the scenarios' outputs, then their differences from the
    first). Offsets and slices are within one block unless a block is named."""
    n_regions: int
    n_scenarios: int = 1

    def shape(self, name: str) -> tuple[int, ...]:
        """The output's own shape: one axis per dim (a scalar output: ())."""
        axis = {"region": self.n_regions, "tier": N_TIERS, "class": menu.N_CLASSES}
        return tuple(axis[d] for d in OUTPUT_BY_NAME[name].dims.split(",") if d)

    @cached_property
    def sizes(self) -> tuple[int, ...]:
        """Series of each output, in OUTPUTS order."""
        return tuple(math.prod(self.shape(o.name)) for o in OUTPUTS)

    @cached_property
    def offsets(self) -> dict[str, int]:
        """Each output's first series within a block."""
        out, at = {}, 0
        for o, size in zip(OUTPUTS, self.sizes):
            out[o.name], at = at, at + size
        return out

    @property
    def block(self) -> int:
        """Series per block (one scenario's outputs)."""
        return sum(self.sizes)

    @property
    def n_blocks(self) -> int:
        return 2 * self.n_scenarios - 1

    @property
    def total(self) -> int:
        """Series per month: every block."""
        return self.block * self.n_blocks

    def slice(self, name: str, block: int = 0) -> slice:
        """The output's series in block `block` of the flat vector."""
        first = block * self.block + self.offsets[name]
        return slice(first, first + self.sizes[OUTPUT_INDEX[name]])

    def unflatten(self, x, name: str, block: int = 0):
        """(..., series) values -> (..., *shape(name)) of one output."""
        return x[..., self.slice(name, block)].reshape(x.shape[:-1] + self.shape(name))

    @cached_property
    def names(self) -> tuple[str, ...]:
        """The output each series of the whole vector belongs to."""
        one = tuple(o.name for o, size in zip(OUTPUTS, self.sizes) for _ in range(size))
        return one * self.n_blocks

    @cached_property
    def log_mask(self) -> tuple[bool, ...]:
        """True for series whose bands are resolved in log space: the log-scale outputs of
        the scenarios' blocks (differences are resolved in linear space)."""
        one = tuple(o.log_scale for o, size in zip(OUTPUTS, self.sizes) for _ in range(size))
        return one * self.n_scenarios + (False,) * (self.block * (self.n_scenarios - 1))

    @cached_property
    def ratio_mask(self) -> tuple[bool, ...]:
        """(block,) True for the series of RATIO_OUTPUTS, whose paired differences are log ratios."""
        return tuple(o.name in RATIO_OUTPUTS for o, size in zip(OUTPUTS, self.sizes) for _ in range(size))


OUTPUT_INDEX = {o.name: i for i, o in enumerate(OUTPUTS)}
