"""The Dask path on a LocalCluster of two worker processes, on the loopback interface only."""

from __future__ import annotations

import copy

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from sklearn.metrics import roc_auc_score

from riskmodel import ValidationError, first_reports, predict, scaleout, train, validate
from riskmodel.config import load_config
from riskmodel.features import GridPanelBuilder
from riskmodel.features.grid_panel import level_units, neighbour_matrix
from riskmodel.models import GBMCount, GBMRisk
from riskmodel.scaleout.partitions import Plan, _blocks
from riskmodel.store import ForecastStore

from .test_disputes import with_duplicates

pytestmark = pytest.mark.xdist_group("dask")  # one cluster for the module, on one test worker

SPLIT = pd.Timestamp("2024-07-01")
TEST_CUTOFFS = {"start": "2024-07-01", "end": "2024-12-02", "freq": "W-MON"}


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
        ) as cluster,  # any free port: the README starts one too
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def small(small_district):
    """The small district (4 streets of 64 grids), validated."""
    return validate(small_district).dataset


def _with_extra_roots(dataset):
    """``dataset`` and a childless street, a street whose community has no grids, and a
    childless root of another level (it sorts first: ``district``)."""
    extra = pd.DataFrame(
        {
            "grid_id": ["S9", "S8", "C99", "D1"],
            "parent_id": [None, None, "S8", None],
            "level": ["street", "street", "community", "district"],
        }
    )
    return dataset.replace(grids=pd.concat([dataset.grids, extra], ignore_index=True))


def _with_new_grid(dataset):
    """``dataset`` and a grid added without cases or attributes."""
    community = dataset.grids.loc[dataset.grids["level"] == "community", "grid_id"].iloc[0]
    extra = pd.DataFrame({"grid_id": ["G-NEW"], "parent_id": [community], "level": ["grid"]})
    return dataset.replace(grids=pd.concat([dataset.grids, extra], ignore_index=True))


@pytest.fixture(scope="module")
def before_split(small):
    return small.replace(
        cases=small.cases[small.cases["reported_at"] < SPLIT],
        as_of=SPLIT,
        grid_history=small.grid_history[small.grid_history["valid_from"] < SPLIT],
    )


@pytest.fixture(scope="module")
def dask_model(client, before_split):
    data = scaleout.DaskDataset.from_dataset(before_split, partitions=3)
    return scaleout.train(data, model=GBMCount(), horizon=28, track=False)


def _same_panel(got: pd.DataFrame, builder: GridPanelBuilder, dataset) -> None:
    reference = copy.deepcopy(builder).build(dataset)
    frame = got.set_index(["grid_id", "cutoff"])
    assert len(frame) == len(reference.X) and frame.index.is_unique
    frame = frame.loc[reference.X.index]
    pd.testing.assert_frame_equal(frame[list(reference.X.columns)], reference.X)  # every value, exactly
    for name in ("y_count", "y", "label_known"):
        pd.testing.assert_series_equal(frame[name], getattr(reference, name), check_names=False)


@pytest.mark.parametrize(
    ("level", "adjacency", "partitions"), [("grid", True, 4), ("grid", False, 3), ("community", True, 2)]
)
@pytest.mark.slow
def test_panel_equals_the_in_memory_panel_across_partition_borders(client, small, level, adjacency, partitions):
    dataset = small if adjacency else small.replace(adjacency=None)  # without pairs: nearest centroids
    data = scaleout.DaskDataset.from_dataset(dataset, partitions=2)
    builder = GridPanelBuilder(cutoffs={"start": "2023-04-03", "freq": "2W-MON"}, horizon=28, level=level)
    scaleout.fit_builder(builder, data)
    in_memory = GridPanelBuilder(cutoffs=builder.cutoffs, horizon=28, level=level).fit(dataset)
    assert list(builder.get_feature_names_out()) == list(in_memory.get_feature_names_out())
    assert (builder.categories_, builder.attributes_) == (in_memory.categories_, in_memory.attributes_)
    units = level_units(data.shape.grids, level)
    plan = Plan(data.shape, level, neighbour_matrix(data.shape, units, builder.neighbours), partitions)
    assert plan.n == partitions and len(plan.routes) > len(plan.owners)  # the borders are crossed: halos exist
    _same_panel(scaleout.build_panel(builder, data, partitions=partitions).compute(), builder, dataset)


def test_visits_and_an_origins_filter_are_refused(small):
    from .conftest import make_dataset, make_plans, make_visits

    with pytest.raises(ValueError, match="the Dask path does not support visits or plans"):
        scaleout.DaskDataset.from_dataset(make_dataset().replace(visits=make_visits(), plans=make_plans()))
    data = scaleout.DaskDataset.from_dataset(small, partitions=2)
    builder = GridPanelBuilder(cutoffs=["2023-06-05"], horizon=28, origins=("resident",))
    with pytest.raises(ValueError, match=r"does not support an origins filter \(origins=\('resident',\)\)"):
        scaleout.fit_builder(builder, data)
    fitted = GridPanelBuilder(cutoffs=["2023-06-05"], horizon=28, origins=("resident",)).fit(
        small.replace(cases=small.cases.assign(origin="resident"))
    )
    with pytest.raises(ValueError, match="does not support an origins filter"):
        scaleout.build_panel(fitted, data)


def test_patrol_counts_equal_the_in_memory_ones(client, small):
    origin = np.where(np.arange(len(small.cases)) % 3 == 0, "patrol", "resident")
    dataset = small.replace(cases=small.cases.assign(origin=origin))
    data = scaleout.DaskDataset.from_dataset(dataset, partitions=2)
    builder = scaleout.fit_builder(
        GridPanelBuilder(cutoffs={"start": "2024-01-01", "freq": "8W-MON"}, horizon=28), data
    )
    assert "patrol_count_91d" in builder.get_feature_names_out()
    _same_panel(scaleout.build_panel(builder, data, partitions=2).compute(), builder, dataset)


@pytest.mark.slow
def test_top_level_units_without_units_of_the_level_join_a_partition(client, small, tmp_path):
    """No partition is left without units, nothing is lost."""
    dataset = _with_extra_roots(small)
    builder = GridPanelBuilder(cutoffs=["2024-03-04", "2024-09-02"], horizon=28)
    data = scaleout.DaskDataset.from_dataset(dataset, partitions=3)
    scaleout.fit_builder(builder, data)
    with pytest.warns(UserWarning, match="partitions=7, but only 4 top-level unit"):
        panel = scaleout.build_panel(builder, data, partitions=7)
    assert panel.npartitions == 4
    _same_panel(panel.compute(), builder, dataset)
    folder = scaleout.write_partitioned(dataset, tmp_path / "parts", partitions=3)
    assert len(scaleout.read_partitioned(folder).cases) == len(small.cases)


@pytest.mark.slow
def test_ids_categories_and_zones_are_read_as_validate_reads_them(client, small):
    codes = {name: i for i, name in enumerate(sorted(set(small.grids["grid_id"])), start=1000)}
    numeric = {c: i for i, c in enumerate(sorted(small.cases["category"].unique()), start=1)}

    def recode(frame, *columns):
        return frame.assign(**{c: frame[c].map(codes).astype("Int64") for c in columns})

    raw = small.replace(
        grids=recode(small.grids, "grid_id", "parent_id"),
        cases=recode(small.cases, "grid_id").assign(category=small.cases["category"].map(numeric)),
        grid_history=recode(small.grid_history, "grid_id"),
        adjacency=recode(small.adjacency, "grid_id", "neighbour_id"),
    )
    raw = raw.replace(as_of=pd.Timestamp(small.as_of).tz_localize("America/New_York"))  # 05:00 in UTC
    data = scaleout.DaskDataset(
        cases=dd.from_pandas(raw.cases, npartitions=2),
        grids=raw.grids,
        grid_history=raw.grid_history,
        adjacency=raw.adjacency,
        as_of=raw.as_of,
    )
    assert data.as_of == pd.Timestamp(small.as_of) + pd.Timedelta(hours=5)
    builder = scaleout.fit_builder(GridPanelBuilder(cutoffs=["2024-03-04"], horizon=28), data)
    assert builder.categories_ == sorted(str(n) for n in numeric.values()) and len(builder.attributes_) > 0
    _same_panel(scaleout.build_panel(builder, data, partitions=3).compute(), builder, raw)


@pytest.mark.parametrize("weights", [[16, 208, 16, 16], [1, 100, 1, 1, 1], [5] * 7, [1, 1, 50]])
def test_partitions_are_as_many_as_asked_when_there_are_enough_top_level_units(weights):
    for n in range(1, len(weights) + 1):
        block = _blocks(np.array(weights, dtype=float), n)
        assert block[0] == 0 and (np.diff(block) >= 0).all() and (np.diff(block) <= 1).all() and block[-1] == n - 1


@pytest.mark.slow
def test_partitioned_folder_reads_back_lazily(client, small, tmp_path):
    folder = scaleout.write_partitioned(small, tmp_path / "small", partitions=3)
    data = scaleout.read_partitioned(folder)
    assert data.cases.npartitions == 3 and data.as_of == small.as_of
    assert len(data.cases) == len(small.cases) and len(data.grids) == len(small.grids)
    builder = scaleout.fit_builder(GridPanelBuilder(cutoffs=["2024-03-04", "2024-09-02"], horizon=28), data)
    _same_panel(scaleout.build_panel(builder, data).compute(), builder, small)
    with pytest.raises(FileNotFoundError, match="not a partitioned dataset folder"):
        scaleout.read_partitioned(tmp_path)


@pytest.mark.slow
def test_bad_cases_are_refused_with_the_column_rule_and_examples(client, small):
    builder = GridPanelBuilder(cutoffs=["2024-03-04"], horizon=28)
    unknown = small.cases.copy()
    first = unknown.index[unknown["case_id"] == unknown["dispute_id"]]  # the reports the features read
    unknown.loc[first[:2], "grid_id"] = "NOWHERE"
    data = scaleout.DaskDataset(
        cases=dd.from_pandas(unknown, npartitions=2),
        grids=small.grids,
        adjacency=small.adjacency,
        grid_history=small.grid_history,
        as_of=small.as_of,
    )
    # Each partition reports its own rows; the dispute shuffle may put the two in different ones.
    with pytest.raises(ValueError, match=r"grid_id: [12] row\(s\) refer to units that are not in grids.*'NOWHERE'"):
        scaleout.build_panel(scaleout.fit_builder(builder, data), data).compute()
    broken = small.cases.copy()
    broken.loc[broken.index[5], "severity"] = 9
    data = scaleout.DaskDataset(cases=dd.from_pandas(broken, npartitions=2), grids=small.grids, as_of=small.as_of)
    with pytest.raises(ValidationError, match="severity"):
        scaleout.build_panel(scaleout.fit_builder(builder, data), data).compute()
    nameless = small.cases.copy()
    nameless.loc[nameless.index[3], "grid_id"] = None
    data = scaleout.DaskDataset(cases=dd.from_pandas(nameless, npartitions=2), grids=small.grids, as_of=small.as_of)
    with pytest.raises(ValidationError, match="grid_id"):  # the contract's own message, from a worker
        scaleout.build_panel(scaleout.fit_builder(builder, data), data).compute()
    as_text = small.cases.assign(reported_at=small.cases["reported_at"].astype(str))
    with pytest.raises(ValueError, match="cases.reported_at must hold datetimes"):
        scaleout.DaskDataset(cases=dd.from_pandas(as_text, npartitions=2), grids=small.grids)
    with pytest.raises(ValueError, match="trains GBMCount"):
        scaleout.train(scaleout.DaskDataset.from_dataset(small, partitions=2), model=GBMRisk(), track=False)


@pytest.mark.slow
def test_dask_model_ranks_as_well_as_the_in_memory_model(dask_model, before_split, small):
    in_memory = train(before_split, model=GBMCount(), horizon=28, track=False)
    assert dask_model.feature_names == in_memory.feature_names
    assert dask_model.schema_hash == in_memory.schema_hash
    panel = copy.copy(in_memory.builder).set_params(cutoffs=TEST_CUTOFFS).build(small)
    known = panel.label_known.to_numpy()
    X, y = panel.X[known], panel.y[known]
    scores = {name: m.estimator.predict_proba(X)[:, 1] for name, m in (("dask", dask_model), ("memory", in_memory))}
    auc = {name: roc_auc_score(y, p) for name, p in scores.items()}
    assert auc["memory"] > 0.6
    assert abs(auc["dask"] - auc["memory"]) <= 0.01, auc
    # Calibrated the same way: 0.028 apart on average (0.071 without the Dask model's calibration).
    assert np.abs(scores["dask"] - scores["memory"]).mean() < 0.045


@pytest.mark.slow
def test_batch_prediction_scores_every_unit_as_predict_does(client, dask_model, small, tmp_path):
    small = _with_new_grid(_with_extra_roots(small))  # a unit the model has not seen; a level only some parts have
    alarms = []
    data = scaleout.DaskDataset.from_dataset(small, partitions=2)
    for as_of, partitions in ((None, 4), ("2024-10-01 08:00", 2), ("2023-11-06", 4)):
        folder = scaleout.predict_partitioned(
            data, tmp_path / "risk", model=dask_model, as_of=as_of, partitions=partitions, record=tmp_path / "store"
        )
        assert len(list(folder.glob("part.*.parquet"))) == partitions  # earlier files are replaced
        got = pd.read_parquet(folder).sort_values("rank").reset_index(drop=True)
        units = small.grids.loc[small.grids["level"] == "grid", "grid_id"]
        assert len(got) == len(units) and set(got["grid_id"]) == set(units)  # no unit lost, none twice
        expected = predict(small, model=dask_model, as_of=as_of)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)
        assert got.loc[got["grid_id"] == "G-NEW", "alerts"].item() == "cold_start;no_history;no_attributes"
        alarms.append(got["alerts"].str.contains("anomaly:").sum())
        assert (got["top_drivers"] != "").sum() == 200
    assert alarms[-1] > 0  # the spike detector's seasonal factor is the whole data's, not a partition's
    stored = ForecastStore(tmp_path / "store").read()  # a folder: Parquet, partitioned by month
    assert len(stored) == 3 * len(units) and stored.groupby("as_of")["unit"].nunique().eq(len(units)).all()
    assert stored.loc[stored["unit"] == "G-NEW", "alerts"].str.startswith("cold_start").all()


@pytest.mark.slow
def test_configuration_trains_on_dask_and_the_champion_serves(client, small, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "run.yaml").write_text(
        "data: {kind: simulator, preset: small}\nhorizons: 28\ntraining: {frequency: 2W-MON}\n"
        "models: {count: {family: GBMCount, params: {n_estimators: 60}}}\ntier_policy: {capacity: 20}\n"
        "experiment: dask\n"
    )
    config = load_config(tmp_path / "run.yaml")
    data = scaleout.DaskDataset.from_dataset(small, partitions=2)
    trained = scaleout.train_final(config, config.estimators()["count"], data, register=True)
    assert trained.model_uri is not None and trained.tier_policy.capacity == 20
    assert trained.builder.get_params()["cutoffs"].freqstr == "2W-MON"
    served = predict(small, model="models:/dispute-risk-grid@champion")
    pd.testing.assert_frame_equal(served, predict(small, model=trained))
    assert (served["tier"] == "red").sum() == 20 and np.isfinite(served["probability"]).all()


@pytest.mark.slow
def test_command_line_trains_and_predicts_on_the_cluster(client, small, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from riskmodel.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    scaleout.write_partitioned(small, tmp_path / "small", partitions=4)
    (tmp_path / "run.yaml").write_text(
        "data: {kind: folder, path: small}\nhorizons: 28\n"
        "models: {count: {family: GBMCount, params: {n_estimators: 40}}}\n"
    )
    address = client.scheduler.address
    runner = CliRunner()
    trained = runner.invoke(
        app, ["train", "--config", "run.yaml", "--model", "count", "--scheduler", address, "--out", "model"]
    )
    assert trained.exit_code == 0, trained.output
    risk = runner.invoke(
        app,
        [
            "predict",
            "--data",
            "small",
            "--model",
            "model",
            "--scheduler",
            address,
            "--partitions",
            "2",
            "--out",
            "risk",
            "--top",
            "3",
        ],
    )
    assert risk.exit_code == 0, risk.output
    assert f"2 Parquet files written to {(tmp_path / 'risk').resolve()}" in risk.output
    assert len(pd.read_parquet(tmp_path / "risk")) == (small.grids["level"] == "grid").sum()
    missing = runner.invoke(app, ["predict", "--data", "small", "--model", "model", "--scheduler", address])
    assert missing.exit_code == 2 and "--out" in missing.output
    alone = runner.invoke(app, ["predict", "--data", "small", "--model", "model", "--partitions", "2"])
    assert alone.exit_code == 2 and "--scheduler" in alone.output


@pytest.mark.slow
def test_training_on_raw_party_keys_warns_as_in_memory(client, small):
    from riskmodel.evaluation.targets import GridRisk

    raw = small.replace(cases=small.cases.assign(party_key="person-" + small.cases["case_id"]))
    data = scaleout.DaskDataset.from_dataset(raw, partitions=2)
    n = len(raw.cases)
    with pytest.warns(UserWarning, match=rf"{n} of the {n} party keys are raw"):
        scaleout.DaskExecutor(client=client).training_set(GridRisk(), data, GBMCount(), frequency="8W-MON")


def test_reports_of_one_dispute_in_other_partitions_count_once(client, small):
    # One report a dispute (the simulator's first reports); the test adds its own further reports.
    small = small.replace(cases=first_reports(small.cases).drop(columns="dispute_id").reset_index(drop=True))
    streets = small.ancestors("street").reindex(small.grids["grid_id"]).to_numpy()
    far = small.grids.loc[(small.grids["level"] == "grid") & (streets == np.sort(streets)[-1]), "grid_id"]
    duplicated = with_duplicates(small, share=0.2, grids=far.to_numpy())  # many in another partition
    data = scaleout.DaskDataset.from_dataset(duplicated, partitions=2)
    builder = scaleout.fit_builder(
        GridPanelBuilder(cutoffs={"start": "2024-01-01", "freq": "8W-MON"}, horizon=28), data
    )
    _same_panel(scaleout.build_panel(builder, data, partitions=4).compute(), builder, small)
