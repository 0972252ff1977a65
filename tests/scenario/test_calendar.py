"""The one calendar (forecast.scenario.calendar): labels, counts and the month a dated
figure falls in agree with each other and with pandas' own month arithmetic."""
import pandas as pd
import pytest

from forecast.scenario.calendar import month_label, month_of, months_between, time_index


def test_labels_counts_and_the_index_agree_over_fifty_years():
    start = "2026-01"
    index = time_index(start, 600)
    assert index[0] == pd.Timestamp("2026-01-01") and index[-1] == pd.Timestamp("2075-12-01")
    for t, first in enumerate(index):
        label = first.strftime("%Y-%m")
        assert month_label(start, t) == label
        assert months_between(start, label) == t
        assert month_of(start, first) == t  # a month's first day is that month


# Months of 365.25 / 12 = 30.4375 days from 2026-01-01: the half-way points fall 76.1 days
# in (between 2026-03-18, day 76, 2.497 months, and 2026-03-19, day 77, 2.530) and 15.2
# days before (between 2025-12-16, day -16, -0.526, and 2025-12-17, day -15, -0.493).
@pytest.mark.parametrize("date, t", [("2026-03-18", 2), ("2026-03-19", 3), ("2025-12-16", -1), ("2025-12-17", 0),
                                     ("2026-02-28", 2), ("2027-01-01", 12)])
def test_a_dated_figure_counts_toward_the_nearer_month_start(date, t):
    days = (pd.Timestamp(date) - pd.Timestamp("2026-01-01")).days
    assert month_of("2026-01", date) == round(days / 30.4375) == t


def test_months_before_the_start_are_negative():
    assert months_between("2026-05", "2025-05") == -12
    assert month_label("2026-05", -13) == "2025-04"
