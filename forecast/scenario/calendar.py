"""The one calendar of a run: month t (0-based) is the month t months after the scenario's
start ("YYYY-MM"), dated at its first day. Every module that labels, parses or counts
months asks here."""
from __future__ import annotations

import pandas as pd


def _ym(month: str) -> int:
    """"YYYY-MM" -> months since year 0."""
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def time_index(start: str, months: int) -> pd.DatetimeIndex:
    """The first day of each of the run's months."""
    return pd.date_range(pd.Timestamp(start + "-01"), periods=months, freq="MS")


def month_label(start: str, t: int) -> str:
    """"YYYY-MM" of month t."""
    total = _ym(start) + int(t)
    return f"{total // 12:04d}-{total % 12 + 1:02d}"


def months_between(start: str, month: str) -> int:
    """t of the month "YYYY-MM" (negative before the start)."""
    return _ym(month) - _ym(start)


def month_of(start: str, date) -> int:
    """t of the run month whose first day is nearest a dated figure (negative before the
    start): the days since the start's first day in months of 365.25 / 12 days, rounded
    (a figure dated in the middle of a month counts toward the nearer month start). On a
    month's first day it is months_between."""
    days = (pd.Timestamp(date) - pd.Timestamp(start + "-01")).days
    return int(round(days / 365.25 * 12))
