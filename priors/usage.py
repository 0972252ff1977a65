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
           "hardware_efficiency.csv", "training_compute_notable_models.csv", "access_menu.csv")
DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
MAX_REPORTED = 20  # problems listed in one error message


class DataError(ValueError):
    """Usage data that cannot be used: each line names the file, the row and the reason."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = problems[:MAX_REPORTED]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__(f"{len(problems)} problem(s) in the usage data:\n  " + "\n  ".join(shown) + more)


def data_dir() -> Path:
    return Path(str(resources.files("priors") / "data"))


@lru_cache(maxsize=1)
def metrics() -> pd.DataFrame:
    """The metric registry: metric, unit, positive ('yes': values must be > 0)."""
    return pd.read_csv(data_dir() / "metrics.csv", dtype=str, keep_default_na=False)


@lru_cache(maxsize=1)
def regions() -> pd.DataFrame:
    """Country -> model region, Global North membership, and `same_as`: the spelling this
    name is an alias of (empty for the spelling the adoption rows use)."""
    return pd.read_csv(data_dir() / "regions.csv", dtype={"country": str, "region": str, "north": int,
                                                             "same_as": str}, keep_default_na=False)


def canonical(names) -> pd.Series:
    """Country names with aliases (regions.csv `same_as`) replaced by the canonical spelling."""
    table = regions()
    alias = dict(zip(table["country"], table["same_as"]))
    names = pd.Series(names, dtype=str)
    return names.map(lambda n: alias.get(n) or n)


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
    if suffix == ".csv":
        _check_csv_bytes(path)
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


def _check_csv_bytes(path: Path):
    """Refuse a CSV that is not UTF-8 (naming the line) or repeats a column name (pandas
    would silently rename the second 'value' to 'value.1' and the loader drop it)."""
    import csv
    import io

    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise DataError([f"{path.name}, line {line} (data row {line - 1}): bytes that are not UTF-8 "
                         f"({raw[e.start:e.start + 4]!r} at byte {e.start}); save the file as UTF-8"]) from None
    header = next(csv.reader(io.StringIO(text)), [])
    seen, problems = {}, []
    for i, name in enumerate(header, start=1):
        key = name.strip()
        if key in seen:
            problems.append(f"{path.name}: duplicate column name {key!r} (columns {seen[key]} and {i}); every column "
                            "needs its own name")
        else:
            seen[key] = i
    if problems:
        raise DataError(problems)


def period_start(text: str) -> pd.Timestamp | None:
    """The first day of the period a date names (YYYY -> 1 January, YYYY-MM -> the 1st)."""
    end = parse_date(text)
    if end is None:
        return None
    m = DATE.match(text.strip())
    return pd.Timestamp(end.year, end.month if m.group(2) else 1, end.day if m.group(3) else 1)


def is_projection(note) -> bool:
    """A row that reports a projection, not an observation: its note starts with
    "projection" (the shipped files' convention). Projections may be dated in the future;
    the fits never use them."""
    return str(note).strip().lower().startswith("projection")


def validate(frame: pd.DataFrame, name: str, today=None, not_after=None) -> tuple[pd.DataFrame, list[str]]:
    """Check one file's rows; returns the typed frame and its problems (empty: all good).

    today: observations whose period starts after it are refused (default: today's date);
    not_after: a data cutoff, rows dated after it are refused."""
    today = pd.Timestamp.now().normalize() if today is None else pd.Timestamp(today)
    problems = []
    missing = [c for c in REQUIRED if c not in frame.columns]
    if not any(c in frame.columns for c in SOURCE_COLUMNS):
        missing.append("source")
    if missing:
        return frame, [f"{name}: missing column(s) {', '.join(missing)} (required: "
                       f"{', '.join(REQUIRED)}, source)"]
    if frame.empty:
        return frame, [f"{name}: no observations (a header but no data rows); add rows or leave the file out"]
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
        date, value, found = _check_row(row._asdict(), f"{name}, row {i}", units, positive, today, not_after)
        problems += found
        dates.append(date)
        values.append(np.nan if value is None else value)
    frame["date_parsed"] = dates
    frame["value_num"] = values
    frame["projection"] = frame["note"].map(is_projection)
    frame["file"] = name
    frame["row"] = np.arange(1, len(frame) + 1)
    seen = {}
    for i, key in enumerate(frame[_identity(frame)].itertuples(index=False, name=None), start=1):
        if key in seen:
            problems.append(f"{name}, row {i}: duplicate of row {seen[key]}")
        else:
            seen[key] = i
    return frame, problems


def _check_row(r: dict, where: str, units: dict, positive: dict, today, not_after):
    """(date, value or None, problems) of one row: its date, metric, unit, entity,
    source and value."""
    problems = []
    date = parse_date(str(r["date"]))
    if date is None:
        problems.append(f"{where}: date {r['date']!r} is not YYYY, YYYY-MM or YYYY-MM-DD")
    elif period_start(str(r["date"])) > today and not is_projection(r["note"]):
        problems.append(f"{where}: date {r['date']!r} is in the future (today is {today.date()}); an observation "
                        "cannot be, and a projection must say so (a note starting with 'projection')")
    elif not_after is not None and date > pd.Timestamp(not_after):
        problems.append(f"{where}: date {r['date']!r} is after the data cutoff {pd.Timestamp(not_after).date()}")
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
    return date, value, problems


def _identity(frame):
    """Columns that make an observation: all the file's own columns."""
    return [c for c in frame.columns if c not in ("date_parsed", "value_num", "projection", "file", "row")]


def _number(text):
    text = str(text).strip()
    if text == "":
        return None
    try:
        v = float(text)
    except ValueError:
        return None
    return v if np.isfinite(v) else None


def load(paths, today=None, not_after=None, accept_outliers=False, warn=None) -> pd.DataFrame:
    """Read and validate files; raise DataError listing every problem, else one DataFrame.

    Besides each row's own checks (validate): a series (entity and metric) must use one
    unit (metrics.csv's `same_as` names spellings of the same unit), and a value more than
    OUTLIER_Z robust standard deviations off its series' robust trend is refused unless
    accept_outliers, in which case it is passed to warn(message) (default: warnings.warn)."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    frames, problems = [], []
    for path in paths:
        try:
            frame = read(path)
        except DataError as e:
            problems.extend(e.problems)
            continue
        frame, found = validate(frame, Path(path).name, today=today, not_after=not_after)
        frames.append(frame)
        problems.extend(found)
    if problems:
        raise DataError(problems)
    if not frames:
        return pd.DataFrame()
    data = pd.concat(frames, ignore_index=True)
    problems = mixed_units(data)
    if problems:
        raise DataError(problems)
    found = outliers(data)
    if found and not accept_outliers:
        raise DataError([f + " (pass --accept-outliers if it is right)" for f in found])
    if found:
        import warnings

        for f in found:
            (warn or (lambda m: warnings.warn(m, stacklevel=3)))(f"accepted outlier: {f}")
    return data


OUTLIER_Z = 8.0  # robust z-score (residual / (1.4826 MAD)) beyond which a value is refused
OUTLIER_MIN_ROWS = 6  # series with fewer dated values are not checked
LOG_SCALE_FLOOR = 0.25  # smallest robust sd of a positive series' log residuals


def mixed_units(data: pd.DataFrame) -> list[str]:
    """Rows whose unit differs (beyond spelling) from the unit the rest of their series uses."""
    reg = metrics()
    canon = {(m, u): (same or u) for m, u, same in zip(reg["metric"], reg["unit"], reg["same_as"])}
    unit = [canon.get((m, u), u) for m, u in zip(data["metric"], data["unit"])]
    frame = data.assign(canonical=unit)
    problems = []
    for (entity, metric), rows in frame.groupby(["entity", "metric"], sort=False):
        counts = rows["canonical"].value_counts()
        if len(counts) < 2:
            continue
        main = counts.index[0]
        for _, r in rows[rows["canonical"] != main].iterrows():
            problems.append(f"{r['file']}, row {r['row']}: unit {r['unit']!r} differs from {main!r}, used by "
                            f"{counts.iloc[0]} other row(s) of the series {entity} / {metric}; convert to one unit")
    return problems


def outliers(data: pd.DataFrame) -> list[str]:
    """Values far off their series' robust trend: per (entity, metric, unit) series with at
    least OUTLIER_MIN_ROWS distinct dates, none holding half the rows, residuals from a Theil-Sen line in time (of the
    log for positive metrics), scaled by 1.4826 x their median absolute deviation (at least
    LOG_SCALE_FLOOR for logs, 1% of the typical value otherwise)."""
    from scipy.stats import theilslopes

    reg = metrics()
    positive = reg.groupby("metric")["positive"].apply(lambda s: (s == "yes").all()).to_dict()
    found = []
    ok = data[~data["projection"] & np.isfinite(data["value_num"].to_numpy(np.float64))]
    for (entity, metric, _unit), rows in ok.groupby(["entity", "metric", "unit"], sort=False):
        counts = rows["date_parsed"].value_counts()
        if len(counts) < OUTLIER_MIN_ROWS or counts.iloc[0] > len(rows) / 2:
            continue  # too short, or a snapshot across vendors rather than a time series
        t = (rows["date_parsed"] - pd.Timestamp("2000-01-01")).dt.days.to_numpy(np.float64) / 365.25
        v = rows["value_num"].to_numpy(np.float64)
        y = np.log(v) if positive.get(metric, False) else v
        slope, intercept, _, _ = theilslopes(y, t)
        resid = y - (intercept + slope * t)
        mad = 1.4826 * np.median(np.abs(resid - np.median(resid)))
        # Floors: many rows of one value (a price list) give a MAD of ~0; a log-scale
        # series tolerates a factor e^(OUTLIER_Z x 0.25) = 7.4 around its trend.
        floor = LOG_SCALE_FLOOR if positive.get(metric, False) else 0.01 * max(np.median(np.abs(y)), 1e-12)
        mad = max(mad, floor)
        z = (resid - np.median(resid)) / mad
        # A value a year or more from every other date of its series is an extrapolation of
        # the trend, not a test of it: not judged.
        days = np.sort(np.unique(t)) * 365.25
        gap = np.array([np.min(np.abs(days[days != d] - d)) if len(days) > 1 else np.inf for d in t * 365.25])
        for k in np.flatnonzero((np.abs(z) > OUTLIER_Z) & (gap < 365.0)):
            r = rows.iloc[k]
            hint = ""
            if positive.get(metric, False):
                ratio = np.exp(resid[k] - np.median(resid))
                for power in (2, 3, 6, 9):
                    if abs(np.log10(max(ratio, 1 / ratio)) - power) < 0.3:
                        hint = f"; about 10^{power} times the trend: a unit mix-up?"
            found.append(f"{r['file']}, row {r['row']}: value {r['value_num']:g} is {abs(z[k]):.0f} robust standard "
                         f"deviations off the trend of {entity} / {metric} (threshold {OUTLIER_Z:g}){hint}")
    return found


def shipped() -> pd.DataFrame:
    """The usage data that ships with the package, validated."""
    return load([data_dir() / f for f in SHIPPED])
