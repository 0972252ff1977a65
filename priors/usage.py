"""Observed usage data: a long-format table of dated observations, each with its source.

Schema (one observation a row; extra columns are kept):
    date    YYYY, YYYY-MM or YYYY-MM-DD (the end of the period for period measures)
    entity  who or what was measured (a country, provider, model, chip, ...)
    metric  a known metric (priors/data/metrics.csv), e.g. ai_user_share
    value   a number; empty only when the source gave a range (lower and upper)
    unit    one of the metric's units in metrics.csv, spelled exactly
    source  where the figure comes from (the shipped files call it source_url)
    note    optional free text
Optional columns the loader understands: period_start, period_end, entity_code,
entity_type, lower, upper, source_title.

`load(paths)` reads CSV or Parquet files, validates every row and returns one pandas
DataFrame (a `file` and `row` column say where each observation came from); every problem
is reported at once as a `DataError` naming the file, the row number (1 is the first data
row) and the reason. `shipped()` loads the data that ships with the package (copied from
the project's public-figures collection, sources kept), so nothing is fetched at run time.
`region_of(country)` maps a country to a model region (priors/data/regions.csv).
"""
from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED = ("date", "entity", "metric", "value", "unit")
SOURCE_COLUMNS = ("source", "source_url")
SHIPPED = ("adoption_by_region.csv", "token_volume.csv", "inference_prices.csv", "compute_supply.csv",
           "hardware_efficiency.csv", "training_compute_notable_models.csv")
DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
MAX_REPORTED = 20  # problems listed in one error message


class DataError(ValueError):
    """Usage data that cannot be used: each line names the file, the row and the reason."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = problems[:MAX_REPORTED]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__(f"{len(problems)} problem(s) in the usage data:\n  " + "\n  ".join(shown) + more)


def _data_dir() -> Path:
    return Path(str(resources.files("priors") / "data"))


@lru_cache(maxsize=1)
def metrics() -> pd.DataFrame:
    """The metric registry: metric, unit, positive ('yes': values must be > 0)."""
    return pd.read_csv(_data_dir() / "metrics.csv", dtype=str, keep_default_na=False)


@lru_cache(maxsize=1)
def regions() -> pd.DataFrame:
    """Country -> model region and Global North membership (see docs/calibration.md)."""
    return pd.read_csv(_data_dir() / "regions.csv", dtype={"country": str, "region": str, "north": int})


def region_of(country: str) -> str:
    """The model region of a country name as the shipped data spells it (case-insensitive)."""
    table = regions()
    hit = table[table["country"].str.lower() == country.strip().lower()]
    if hit.empty:
        raise KeyError(f"unknown country {country!r}; add it to priors/data/regions.csv")
    return str(hit["region"].iloc[0])


def parse_date(text: str) -> pd.Timestamp | None:
    """YYYY -> end of that year, YYYY-MM -> end of that month, YYYY-MM-DD -> that day."""
    m = DATE.match(text.strip())
    if not m:
        return None
    year, month, day = m.groups()
    try:
        if day:
            return pd.Timestamp(int(year), int(month), int(day))
        if month:
            return pd.Timestamp(int(year), int(month), 1) + pd.offsets.MonthEnd(0)
        return pd.Timestamp(int(year), 12, 31)
    except ValueError:
        return None


def read(path: str | Path) -> pd.DataFrame:
    """One CSV or Parquet file as strings, unvalidated."""
    path = Path(path)
    if not path.exists():
        raise DataError([f"{path}: no such file"])
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path).astype(object)
            frame = frame.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
        else:
            raise DataError([f"{path}: unknown format {suffix!r} (allowed: .csv, .parquet)"])
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError([f"{path}: cannot be read ({e})"]) from e
    return frame


def validate(frame: pd.DataFrame, name: str) -> tuple[pd.DataFrame, list[str]]:
    """Check one file's rows; returns the typed frame and its problems (empty: all good)."""
    problems = []
    missing = [c for c in REQUIRED if c not in frame.columns]
    if not any(c in frame.columns for c in SOURCE_COLUMNS):
        missing.append("source")
    if missing:
        return frame, [f"{name}: missing column(s) {', '.join(missing)} (required: "
                       f"{', '.join(REQUIRED)}, source)"]
    frame = frame.copy()
    if "source" not in frame.columns:
        frame["source"] = frame["source_url"]
    for col in ("lower", "upper", "note"):
        if col not in frame.columns:
            frame[col] = ""
    known = metrics()
    units = known.groupby("metric")["unit"].apply(set).to_dict()
    positive = known.groupby("metric")["positive"].apply(lambda s: (s == "yes").all()).to_dict()
    dates, values = [], []
    for i, row in enumerate(frame.itertuples(index=False), start=1):
        r = row._asdict()
        where = f"{name}, row {i}"
        date = parse_date(str(r["date"]))
        if date is None:
            problems.append(f"{where}: date {r['date']!r} is not YYYY, YYYY-MM or YYYY-MM-DD")
        metric, unit = str(r["metric"]), str(r["unit"])
        if metric not in units:
            problems.append(f"{where}: unknown metric {metric!r} (known metrics are listed in "
                            f"priors/data/metrics.csv)")
        elif unit not in units[metric]:
            problems.append(f"{where}: unit {unit!r} is not a unit of {metric} (allowed: "
                            f"{' | '.join(sorted(units[metric]))})")
        if not str(r["entity"]).strip():
            problems.append(f"{where}: entity is empty")
        if not str(r["source"]).strip():
            problems.append(f"{where}: source is empty (every observation needs one)")
        value = _number(r["value"])
        bounds = _number(r["lower"]), _number(r["upper"])
        if value is None and not (r["value"] == "" and None not in bounds):
            problems.append(f"{where}: value {r['value']!r} is not a number (empty only with both lower "
                            f"and upper)")
        if value is not None and positive.get(metric, False) and not value > 0:
            problems.append(f"{where}: value {value:g} must be positive for {metric}")
        dates.append(date)
        values.append(np.nan if value is None else value)
    frame["date_parsed"] = dates
    frame["value_num"] = values
    frame["file"] = name
    frame["row"] = np.arange(1, len(frame) + 1)
    seen = {}
    for i, key in enumerate(frame[_identity(frame)].itertuples(index=False, name=None), start=1):
        if key in seen:
            problems.append(f"{name}, row {i}: duplicate of row {seen[key]}")
        else:
            seen[key] = i
    return frame, problems


def _identity(frame):
    """Columns that make an observation: all the file's own columns."""
    return [c for c in frame.columns if c not in ("date_parsed", "value_num", "file", "row")]


def _number(text):
    text = str(text).strip()
    if text == "":
        return None
    try:
        v = float(text)
    except ValueError:
        return None
    return v if np.isfinite(v) else None


def load(paths) -> pd.DataFrame:
    """Read and validate files; raise DataError listing every problem, else one DataFrame."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    frames, problems = [], []
    for path in paths:
        try:
            frame = read(path)
        except DataError as e:
            problems.extend(e.problems)
            continue
        frame, found = validate(frame, Path(path).name)
        frames.append(frame)
        problems.extend(found)
    if problems:
        raise DataError(problems)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def shipped() -> pd.DataFrame:
    """The usage data that ships with the package, validated."""
    return load([_data_dir() / f for f in SHIPPED])
