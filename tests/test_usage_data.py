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
