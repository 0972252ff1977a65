"""The usage-data layer: the shipped data validates; bad rows are named with their row."""
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner

from forecast.cli import main
from priors import usage

GOOD = {"date": "2025-06", "entity": "Brazil", "metric": "ai_user_share", "value": "12.5",
        "unit": "% of working-age population", "source": "https://example.org/report", "note": ""}


def write(tmp_path, rows, name="obs.csv"):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_shipped_data_validates_and_maps_countries():
    data = usage.shipped()
    assert set(data["file"]) == set(usage.SHIPPED)
    assert data["date_parsed"].notna().all() and data["source"].str.len().gt(0).all()
    countries = data.loc[(data["file"] == "adoption_by_region.csv") & (data["entity_type"] == "country"), "entity"]
    regions = {usage.region_of(c) for c in countries}
    assert regions == {"us", "europe", "china", "other_north", "global_south"}
    table = usage.regions()
    assert set(table.loc[table["north"] == 1, "region"]) == {"us", "europe", "other_north"}


def test_dates_are_period_ends():
    assert usage.parse_date("2025") == pd.Timestamp(2025, 12, 31)
    assert usage.parse_date("2024-02") == pd.Timestamp(2024, 2, 29)
    assert usage.parse_date("2025-07-23") == pd.Timestamp(2025, 7, 23)
    for bad in ("2025-13", "2025-02-30", "June 2025", "25-06"):
        assert usage.parse_date(bad) is None


@pytest.mark.parametrize("change, reason", [
    ({"metric": "ai_happiness"}, "row 2: unknown metric 'ai_happiness'"),
    ({"unit": "percent"}, "row 2: unit 'percent' is not a unit of ai_user_share"),
    ({"date": "2025-13"}, "row 2: date '2025-13' is not YYYY"),
    ({"value": "-3"}, "row 2: value -3 must be positive for ai_user_share"),
    ({"value": "0"}, "row 2: value 0 must be positive"),
    ({"value": "lots"}, "row 2: value 'lots' is not a number"),
    ({"source": ""}, "row 2: source is empty"),
])
def test_bad_rows_are_named(tmp_path, change, reason):
    path = write(tmp_path, [GOOD, {**GOOD, "date": "2025-12", **change}])
    with pytest.raises(usage.DataError, match=reason.replace("(", r"\(")) as err:
        usage.load(path)
    assert "obs.csv" in str(err.value) and len(err.value.problems) == 1


def test_duplicates_missing_columns_and_every_problem_at_once(tmp_path):
    path = write(tmp_path, [GOOD, {**GOOD, "unit": "%"}, GOOD])
    with pytest.raises(usage.DataError) as err:
        usage.load(path)
    assert err.value.problems == [
        "obs.csv, row 2: unit '%' is not a unit of ai_user_share (allowed: % of working-age population)",
        "obs.csv, row 3: duplicate of row 1"]
    path = write(tmp_path, [{k: v for k, v in GOOD.items() if k != "source"}], "nosource.csv")
    with pytest.raises(usage.DataError, match="nosource.csv: missing column"):
        usage.load(path)


def test_parquet_and_extra_columns(tmp_path):
    rows = [{**GOOD, "my_column": "kept"}, {**GOOD, "date": "2025-12", "value": "18"}]
    path = tmp_path / "obs.parquet"
    pd.DataFrame(rows).to_parquet(path)
    data = usage.load(path)
    assert list(data["value_num"]) == [12.5, 18.0] and list(data["my_column"]) == ["kept", ""]
    pd.DataFrame([rows[0], {**rows[1], "date": "someday"}]).to_parquet(path)
    with pytest.raises(usage.DataError, match="obs.parquet, row 2: date 'someday'"):
        usage.load(path)


def test_range_only_rows_are_allowed(tmp_path):
    path = write(tmp_path, [{**GOOD, "value": "", "lower": "10", "upper": "20"}])
    assert usage.load(path)["value_num"].isna().all()


def test_cli_check_data(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(main, ["check-data", str(write(tmp_path, [GOOD]))])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(main, ["check-data", str(write(tmp_path, [{**GOOD, "metric": "x"}], "bad.csv"))])
    assert bad.exit_code == 2 and "bad.csv, row 1: unknown metric 'x'" in bad.output
    shutil.rmtree(tmp_path)


def series_rows(values, start=2024):
    """Monthly rows of one series (Brazil's AI user share) with the given values."""
    return [{**GOOD, "date": f"{start + i // 12}-{i % 12 + 1:02d}", "value": str(v)} for i, v in enumerate(values)]


@pytest.mark.parametrize("rows, reason", [
    ([GOOD, {**GOOD, "date": "2099"}], "row 2: date '2099' is in the future"),
    ([GOOD, {**GOOD, "date": "2099", "note": "projection: a think tank's"}], None),  # marked: allowed
    ([GOOD, {**GOOD, "date": "2025-09", "unit": "% of working-age population"},
      {**GOOD, "metric": "anthropic_ai_usage_index", "unit": "index (1.0 = proportional)", "value": "0.5"},
      {**GOOD, "metric": "anthropic_ai_usage_index", "date": "2025-09", "value": "0.6",
       "unit": "index (1.0 = proportional to working-age population)"}], None),  # one unit, two spellings
    (series_rows([10, 11, 12, 13, 14, 15, 16, 1500, 18, 19]),
     "row 8: value 1500 is .* robust standard deviations off the trend of Brazil / ai_user_share .*10\\^2 times"),
])
def test_data_that_would_bend_a_fit_is_refused(tmp_path, rows, reason):
    path = write(tmp_path, rows)
    if reason is None:
        assert len(usage.load(path)) == len(rows)
        return
    with pytest.raises(usage.DataError, match=reason) as err:
        usage.load(path)
    assert len(err.value.problems) == 1


def test_mixed_units_in_a_series_are_refused(monkeypatch, tmp_path):
    table = usage.metrics().copy()
    extra = pd.DataFrame([{"metric": "ai_user_share", "unit": "share of working-age population (0-1)",
                           "positive": "yes", "file": "x", "same_as": ""}])
    monkeypatch.setattr(usage, "metrics", lambda: pd.concat([table, extra], ignore_index=True))
    rows = [GOOD, {**GOOD, "date": "2025-09"}, {**GOOD, "date": "2025-10", "value": "0.13",
                                               "unit": "share of working-age population (0-1)"}]
    with pytest.raises(usage.DataError, match="row 3: unit 'share of working-age population .0-1.' differs from "
                                              "'% of working-age population', used by 2 other row"):
        usage.load(write(tmp_path, rows))


def test_outliers_can_be_accepted_with_a_warning(tmp_path):
    path = write(tmp_path, series_rows([10, 11, 12, 13, 14, 15, 16, 1500, 18, 19]))
    seen = []
    data = usage.load(path, accept_outliers=True, warn=seen.append)
    assert len(data) == 10 and len(seen) == 1 and "row 8" in seen[0]
    # a steady trend is no outlier, however steep
    assert len(usage.load(write(tmp_path, series_rows([2 ** i for i in range(12)]), "steep.csv"))) == 12


def test_cutoff_duplicate_columns_and_bytes(tmp_path):
    with pytest.raises(usage.DataError, match="row 2: date '2025-12' is after the data cutoff 2025-07-01"):
        usage.load(write(tmp_path, [GOOD, {**GOOD, "date": "2025-12"}]), not_after="2025-07-01")
    dup = tmp_path / "dup.csv"
    dup.write_text("date,entity,metric,value,unit,source,value\n2025-06,Brazil,ai_user_share,12,"
                   "% of working-age population,https://x.org,13\n", encoding="utf-8")
    with pytest.raises(usage.DataError, match="dup.csv: duplicate column name 'value' .columns 4 and 7."):
        usage.load(dup)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("date,entity,metric,value,unit,source\n2025-06,Brazil,ai_user_share,12,"
                      "% of working-age population,https://x.org\n2025-07,S\xe3o Paulo,ai_user_share,12,"
                      "% of working-age population,https://x.org\n".encode("latin-1"))
    with pytest.raises(usage.DataError, match="latin.csv, line 3 .data row 2.: bytes that are not UTF-8"):
        usage.load(latin)


@pytest.mark.parametrize("args, message", [
    (["--accept-outliers"], None),
    ([], "row 8: value 1500"),
])
def test_cli_refuses_and_writes_nothing(tmp_path, args, message):
    path = write(tmp_path, series_rows([10, 11, 12, 13, 14, 15, 16, 1500, 18, 19]))
    res = CliRunner().invoke(main, ["check-data", str(path), *args])
    if message is None:
        assert res.exit_code == 0 and "accepted outlier" in res.output
    else:
        assert res.exit_code == 2 and message in res.output and "obs.csv" in res.output
    future = write(tmp_path, [GOOD, {**GOOD, "date": "2099"}], "future.csv")
    out = tmp_path / "post.nc"
    res = CliRunner().invoke(main, ["calibrate", str(future), "-o", str(out), "--models", "adoption"])
    assert res.exit_code == 2 and "future.csv, row 2: date '2099' is in the future" in res.output
    assert not out.exists()


def test_projections_are_not_fitted():
    from priors.models import rows_of

    data = usage.shipped()
    projections = data[data["projection"]]
    assert len(projections) >= 10 and (projections["date_parsed"] > pd.Timestamp.now()).any()
    assert not rows_of(data, set(projections["metric"]))["projection"].any()
