"""The forecast store: what predict(record=) keeps, once, from threads and processes, in SQLite
and in Parquet; a store that cannot be written loses no forecast; other schema versions and bad
input are refused by name."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from riskmodel import TrainedModel, predict, train
from riskmodel.cli import app
from riskmodel.datasets import simulate_district
from riskmodel.io import write_dataset
from riskmodel.models import HistoricalRateBaseline, LogisticRisk
from riskmodel.store import (
    COLUMNS,
    ForecastNotRecorded,
    ForecastStore,
    StoreSchemaError,
    default_store,
    model_identity,
    open_store,
)

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def tiny():
    return simulate_district("tiny", seed=0)


@pytest.fixture(scope="module")
def trained(tiny):
    return train(tiny, model=HistoricalRateBaseline(), horizon=28, track=False)


@pytest.fixture(scope="module")
def risk(tiny, trained):
    return predict(tiny, model=trained)


def shifted(risk: pd.DataFrame, weeks: int) -> pd.DataFrame:
    """The same forecast as of ``weeks`` later (another forecast for the store)."""
    return risk.assign(as_of=risk["as_of"] + pd.Timedelta(weeks=weeks))


@pytest.mark.parametrize("where", ["forecasts.db", "parquet/"])
def test_predict_records_its_answer_once(tmp_path, tiny, trained, risk, where):
    store = str(tmp_path / where)
    answer = predict(tiny, model=trained, record=store)
    again = predict(tiny, model=trained, record=store)
    pd.testing.assert_frame_equal(answer, again)
    kept = ForecastStore(store).read()
    assert list(kept.columns) == list(COLUMNS) and len(kept) == len(answer) == 25
    by_unit = kept.set_index("unit").loc[answer["grid_id"]]
    for column in ("probability", "expected_count", "low", "high", "rank"):
        np.testing.assert_array_equal(by_unit[column].to_numpy(), answer[column].to_numpy())
    assert (by_unit["tier"].to_numpy() == answer["tier"].to_numpy()).all()
    name, version = model_identity(trained)
    assert (kept["model_name"] == name).all() and (kept["model_version"] == version).all()
    assert (kept["as_of"] == answer["as_of"].iloc[0]).all() and (kept["horizon"] == "28D").all()
    assert (kept["window_end"] == kept["as_of"] + pd.Timedelta(days=28)).all() and (kept["horizon_days"] == 28).all()
    assert (kept["unit_kind"] == "grid_id").all() and (kept["level"] == "grid").all()
    assert kept["forecast_id"].is_unique and kept["forecast_id"].str.len().eq(32).all()
    assert ForecastStore(store).record(answer, model=trained) == 0


def test_sqlite_and_parquet_keep_the_same_rows(tmp_path, trained, risk):
    sql, folder = ForecastStore(tmp_path / "f.db"), ForecastStore(str(tmp_path / "p") + "/")
    for store in (sql, folder):
        assert store.record(risk, model=trained) == 25
        assert store.record(shifted(risk, 5), model=trained) == 25  # 2024-02: another month
    a, b = (s.read().drop(columns="recorded_at") for s in (sql, folder))
    pd.testing.assert_frame_equal(a, b)
    months = sorted(p.name for p in (tmp_path / "p").glob("month=*"))
    assert months == ["month=2024-01", "month=2024-02"] and len(list((tmp_path / "p").rglob("part-*.parquet"))) == 2
    first = risk["as_of"].iloc[0]
    for store in (sql, folder):
        assert len(store.read(since=first + pd.Timedelta(days=1))) == 25
        assert len(store.read(until=first)) == 25
        assert len(store.read(model="dispute-risk-grid")) == 50 and len(store.read(model=trained)) == 50
        assert store.read(model="dispute-risk-grid/sha256:0000000000000000").empty


def test_a_registry_version_names_the_model_and_a_saved_folder_its_content(tmp_path, trained):
    folder = trained.save(tmp_path / "model")
    first, second = TrainedModel.load(folder), TrainedModel.load(folder)
    assert model_identity(first) == model_identity(second) == model_identity(trained)  # served, then monitored
    assert model_identity(first)[1].startswith("sha256:")
    other = train(simulate_district("tiny", seed=1), model=HistoricalRateBaseline(), track=False)
    assert model_identity(other) != model_identity(trained)
    first.model_uri = "models:/dispute-risk-grid/3"  # as load_model sets it for a registry version
    assert model_identity(first) == ("dispute-risk-grid", "3")


def test_a_case_model_records_cases_without_counts(tmp_path, tiny):
    trained = train(tiny, model=LogisticRisk(), target="escalation", escalation_days=30, track=False)
    answer = predict(tiny, as_of="2023-10-02", model=trained, record=tmp_path / "f.db")
    kept = ForecastStore(tmp_path / "f.db").read()
    assert sorted(kept["unit"]) == sorted(answer["case_id"]) and (kept["unit_kind"] == "case_id").all()
    assert kept["expected_count"].isna().all() and kept["low"].isna().all() and kept["level"].isna().all()
    assert (kept["horizon"] == "30D").all() and kept["model_name"].iloc[0] == trained.registered_name


@pytest.mark.parametrize("where", ["forecasts.db", "parquet/"])
def test_eight_threads_write_each_forecast_once(tmp_path, trained, risk, where):
    store = ForecastStore(str(tmp_path / where))
    frames = [shifted(risk, 0), *(shifted(risk, 1 + i) for i in range(8))]  # one shared, one each

    def work(i: int) -> int:
        return store.record(frames[0], model=trained) + store.record(frames[1 + i], model=trained)

    with ThreadPoolExecutor(8) as pool:
        written = list(pool.map(work, range(8)))
    kept = store.read()
    assert sum(written) == len(kept) == 9 * 25
    assert not kept.duplicated(["model_version", "as_of", "unit"]).any()
    assert sorted(kept["as_of"].unique()) == sorted(f["as_of"].iloc[0] for f in frames)


PROCESS = """
import json, sys, time
import pandas as pd
from riskmodel import TrainedModel
from riskmodel.store import ForecastStore
folder, frames, stores, me, start = sys.argv[1:]
stores, me, start = json.loads(stores), int(me), float(start)
trained = TrainedModel.load(folder)
shared, own = pd.read_parquet(frames + "/shared.parquet"), pd.read_parquet(frames + f"/own-{me}.parquet")
time.sleep(max(0.0, start - time.time()))  # both processes write at once
written = {s: [ForecastStore(s).record(f, model=trained) for f in (shared, own, shared)] for s in stores}
print(json.dumps(written))
"""


def test_two_processes_write_each_forecast_once(tmp_path, trained, risk):
    folder = trained.save(tmp_path / "model")
    (tmp_path / "frames").mkdir()
    risk.to_parquet(tmp_path / "frames" / "shared.parquet")
    for me in (0, 1):
        shifted(risk, 1 + me).to_parquet(tmp_path / "frames" / f"own-{me}.parquet")
    stores = [str(tmp_path / "forecasts.db"), str(tmp_path / "parquet") + "/"]
    start = time.time() + 8  # after both have imported riskmodel and loaded the model
    arguments = [str(folder), str(tmp_path / "frames"), json.dumps(stores)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PROCESS, *arguments, str(me), str(start)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me in (0, 1)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=240)
        assert process.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    for store in stores:
        counts = [r[store] for r in results]
        assert [c[1] for c in counts] == [25, 25]  # each process's own forecast
        assert sum(c[0] + c[2] for c in counts) == 25  # the shared one, written by one of them, once
        kept = ForecastStore(store).read()
        assert len(kept) == 75 and not kept.duplicated(["model_version", "as_of", "unit"]).any()
        assert kept["model_version"].nunique() == 1  # both processes name the loaded model alike


def test_a_store_that_cannot_be_written_loses_no_forecast(tmp_path, tiny, trained, risk):
    (tmp_path / "a-file").write_text("not a folder")
    store = tmp_path / "a-file" / "forecasts.db"
    with pytest.warns(ForecastNotRecorded, match=r"not recorded in the store sqlite:///.*a-file/forecasts\.db: \w+"):
        answer = predict(tiny, model=trained, record=store)
    pd.testing.assert_frame_equal(answer, risk)
    data, model = write_dataset(tiny, tmp_path / "d"), trained.save(tmp_path / "m")
    with pytest.warns(ForecastNotRecorded, match="a-file"):
        result = CliRunner().invoke(
            app, ["predict", "--data", str(data), "--model", str(model), "--record", str(store), "--top", "1"]
        )
    assert result.exit_code == 0 and "riskiest of 25 units" in result.output and "recorded" not in result.output


def test_another_schema_version_is_refused_naming_both(tmp_path, tiny, trained, risk):
    path = tmp_path / "f.db"
    ForecastStore(path).record(risk, model=trained)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE store_schema SET value = '0' WHERE name = 'schema_version'")
    with pytest.raises(StoreSchemaError, match="written with schema version 0; this riskmodel .* schema version 1"):
        ForecastStore(path).read()
    with pytest.warns(ForecastNotRecorded, match="schema version 0"):
        predict(tiny, model=trained, record=ForecastStore(path))
    folder = tmp_path / "p"
    assert ForecastStore(str(folder) + "/").record(risk, model=trained) == 25
    (folder / "_forecast_store.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(StoreSchemaError, match="schema version 99; .* schema version 1"):
        ForecastStore(folder).record(risk, model=trained)
    with sqlite3.connect(tmp_path / "mlflow.db") as connection:
        connection.execute("CREATE TABLE alembic_version (version_num TEXT)")
    with pytest.raises(StoreSchemaError, match=r"holds other tables \(\['alembic_version'\]\)"):
        ForecastStore(tmp_path / "mlflow.db").read()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r.drop(columns="rank"), r"needs the column\(s\) .*\['rank'\] missing"),
        (lambda r: r.assign(probability=r["probability"] + 2), "probability must be a number from 0 to 1: 25 row"),
        (lambda r: pd.concat([r, r.head(2)]), "grid_id must appear once per as_of: 4 row"),
        (lambda r: r.assign(low=r["high"] + 1), "low must be at most high"),
        (lambda r: r.assign(as_of="soon"), r"as_of must be a time: 25 row\(s\) do not, e.g. \['soon'"),
        (lambda r: r.assign(rank=0), "rank must be a whole number from 1"),
    ],
)
def test_bad_input_is_refused_naming_the_column_and_the_rule(tmp_path, trained, risk, change, message):
    store = ForecastStore(tmp_path / "f.db")
    with pytest.raises(ValueError, match=message):
        store.record(change(risk), model=trained)
    assert store.read().empty


def test_open_store_takes_urls_paths_folders_and_the_default(tmp_path, monkeypatch):
    assert open_store(tmp_path / "f.db").url == f"sqlite:///{tmp_path / 'f.db'}"
    assert open_store(f"sqlite:///{tmp_path}/g.db").url == f"sqlite:///{tmp_path}/g.db"
    assert open_store(tmp_path).url == str(tmp_path)  # an existing folder: Parquet
    store = ForecastStore(tmp_path)
    assert open_store(store) is store
    monkeypatch.setenv("RISKMODEL_FORECAST_STORE", str(tmp_path / "env.db"))
    assert default_store() == str(tmp_path / "env.db") and open_store(True).url.endswith("env.db")
    monkeypatch.delenv("RISKMODEL_FORECAST_STORE")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/runs/mlflow.db")
    assert default_store() == f"sqlite:///{tmp_path}/runs/forecasts.db"
    with pytest.raises(TypeError, match="record must be a ForecastStore, a SQLAlchemy URL, a path or True"):
        open_store(3)


def test_the_command_records_and_says_how_many(tmp_path, tiny, trained):
    data, model = write_dataset(tiny, tmp_path / "d"), trained.save(tmp_path / "m")
    args = ["predict", "--data", str(data), "--model", str(model), "--top", "1", "--record", str(tmp_path / "f.db")]
    first, second = CliRunner().invoke(app, args), CliRunner().invoke(app, args)
    assert first.exit_code == 0 and f"25 forecast(s) recorded in sqlite:///{tmp_path}/f.db" in first.output
    assert second.exit_code == 0 and "0 forecast(s) recorded" in second.output
    assert len(ForecastStore(tmp_path / "f.db").read()) == 25


def test_a_database_without_insert_or_ignore_keeps_each_forecast_once(tmp_path, monkeypatch, trained, risk):
    from riskmodel.store import sql

    monkeypatch.setitem(sql._INSERTS, "sqlite", sql._insert_checked)  # the generic path
    store = ForecastStore(tmp_path / "f.db")
    with ThreadPoolExecutor(4) as pool:
        written = list(pool.map(lambda i: store.record(shifted(risk, i % 2), model=trained), range(8)))
    assert sum(written) == 50 and len(store.read()) == 50


def test_a_registry_model_is_recorded_by_its_version_in_the_default_store(tmp_path, monkeypatch, tiny):
    pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RISKMODEL_FORECAST_STORE", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    train(tiny, model=HistoricalRateBaseline(), horizon=28, register=True, experiment="exp")
    answer = predict(tiny, model="models:/dispute-risk-grid@champion", record=True)
    kept = ForecastStore(tmp_path / "forecasts.db").read()  # beside mlflow.db
    assert (tmp_path / "mlflow.db").is_file() and len(kept) == len(answer) == 25
    assert set(kept["model_version"]) == {"1"} and set(kept["model_name"]) == {"dispute-risk-grid"}
