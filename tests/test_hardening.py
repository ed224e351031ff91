"""The probes of the hardening issue, replayed as regression tests: each bad or odd input that once
crashed, was silently dropped or altered, or ran code, and the clear error or right answer it gets now."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from riskmodel import ValidationError, load_model, predict, pseudonymize, train, validate
from riskmodel.checksums import content_digest
from riskmodel.cli import app
from riskmodel.datasets import simulate_district
from riskmodel.evaluation import backtest
from riskmodel.io import DatasetFileError, events_to_dataset, read_dataset, write_dataset
from riskmodel.models import HistoricalRateBaseline
from riskmodel.persistence import ModelFileError
from riskmodel.privacy import SALT_VARIABLE

from .conftest import make_dataset


@pytest.fixture(scope="module")
def tiny():
    return simulate_district("tiny", seed=0)


@pytest.fixture(scope="module")
def tiny_model(tiny):
    return train(tiny, model=HistoricalRateBaseline(), horizon=28, track=False)


# -- Dataset files: they cannot lose or change rows silently ----------------------------------

_KEY = "p-alpha"  # a party_key of the fixture


def _folder(tmp_path, format="csv", dataset=None):
    return write_dataset(dataset or validate(make_dataset()).dataset, tmp_path / "d", format=format)


def _set_manifest(folder, change):
    """Edit the manifest as a tool would, its own checksum recomputed (else that checksum refuses it first)."""
    manifest = json.loads((folder / "dataset.json").read_text())
    manifest.pop("manifest_sha256")
    change(manifest)
    manifest["manifest_sha256"] = content_digest(manifest)
    (folder / "dataset.json").write_text(json.dumps(manifest))


def _read_fails(folder, match, verify=True):
    with pytest.raises(DatasetFileError, match=match) as caught:
        read_dataset(folder, verify=verify)
    assert _KEY not in str(caught.value)
    return str(caught.value)


def test_dataset_files_a_truncated_csv_is_refused(tmp_path):
    """Probe: a CSV cut mid-row read 129 of 265 rows, its last value cut to "mediati"."""
    folder = _folder(tmp_path)
    cases = folder / "cases.csv"
    cases.write_bytes(cases.read_bytes()[:-9])
    _read_fails(folder, r"cases\.csv was changed or cut short.*SHA-256")


def test_dataset_files_values_outside_the_categories_are_refused(tmp_path):
    """Probe: values missing from the manifest's categories silently became NaN."""
    data = validate(make_dataset()).dataset
    folder = _folder(
        tmp_path, "parquet", data.replace(cases=data.cases.assign(source=data.cases["source"].astype("category")))
    )
    _set_manifest(
        folder, lambda m: next(s for s in m["tables"]["cases"] if s["name"] == "source").update(categories=["hotline"])
    )
    _read_fails(folder, r"cases\.parquet: column 'source': 2 value\(s\) are not among the categories")


def test_dataset_files_a_column_the_file_lacks(tmp_path):
    """Probe: a column the manifest lists but the file lacks was ``KeyError: 'ghost'``."""
    folder = _folder(tmp_path)
    _set_manifest(folder, lambda m: m["tables"]["grids"].append({"name": "ghost", "dtype": "str"}))
    _read_fails(folder, r"grids\.csv lacks column\(s\) 'ghost'")


def test_dataset_files_an_unknown_table_name(tmp_path):
    """Probe: an unknown table was a ``TypeError`` from ``Dataset.__init__``; a path was opened."""
    folder = _folder(tmp_path)
    for name in ("people", "../outside", "/tmp/x"):
        _set_manifest(folder, lambda m, name=name: m["tables"].update({name: []}))
        _read_fails(folder, r"dataset\.json .*table name\(s\) .* are not among cases")
        _set_manifest(folder, lambda m, name=name: m["tables"].pop(name))


def test_dataset_files_an_empty_or_non_utf8_csv(tmp_path):
    """Probe: a 0-byte CSV, or UTF-16 or Latin-1 text, ended in pandas' own errors."""
    folder = _folder(tmp_path)
    grids = folder / "grids.csv"
    text = grids.read_bytes().decode()
    for content, match in (
        (b"", r"grids\.csv is empty \(0 bytes\)"),
        (text.encode("utf-16"), r"grids\.csv is not UTF-8 text \(it looks like UTF-16\)"),
        (text.replace("street", "stré").encode("latin-1"), r"grids\.csv .*column 'level'"),
    ):
        grids.write_bytes(content)
        _read_fails(folder, match, verify=False)


def test_dataset_files_an_integer_column_with_blanks(tmp_path):
    """Probe: a blank in an int64 column was pandas' "Integer column has NA values"."""
    folder = _folder(tmp_path)
    cases = folder / "cases.csv"
    cases.write_bytes(cases.read_bytes().replace(b",2,police", b",,police"))
    _read_fails(folder, r"cases\.csv: column 'severity': 1 value\(s\) are blank", verify=False)


def test_dataset_files_a_corrupt_parquet_file(tmp_path):
    """Probe: a corrupt Parquet file was pyarrow's traceback."""
    folder = _folder(tmp_path, "parquet")
    (folder / "grids.parquet").write_bytes(b"PAR1 not really")
    _read_fails(folder, r"grids\.parquet is not a readable Parquet file", verify=False)
    _read_fails(folder, r"grids\.parquet was changed or cut short")


def test_dataset_files_a_mixed_csv_column_is_not_written(tmp_path):
    """Probe: an object column holding 1 and "1" came back as two equal texts."""
    data = validate(make_dataset()).dataset
    mixed = data.replace(cases=data.cases.assign(code=pd.Series([1, "1", 2, None], dtype=object)))
    with pytest.raises(DatasetFileError, match=r"cases\.code to CSV: it mixes values of types int, str"):
        write_dataset(mixed, tmp_path / "d", format="csv")


def test_dataset_files_a_party_key_typed_int64_is_not_in_the_read_error(tmp_path):
    """Probe: a manifest typing party_key as int64 leaked "invalid literal for int() ... 'p-alpha'"."""
    for format in ("csv", "parquet"):
        folder = _folder(tmp_path / format, format)
        _set_manifest(
            folder, lambda m: next(s for s in m["tables"]["cases"] if s["name"] == "party_key").update(dtype="int64")
        )
        message = _read_fails(folder, rf"cases\.{format}: column 'party_key': .* \(first at row 0\)")
        assert "e.g." not in message


def test_dataset_files_a_party_key_is_not_in_pyarrows_write_error(tmp_path):
    """Probe: pyarrow's error writing a mixed party_key column quoted a key."""
    data = validate(make_dataset()).dataset
    mixed = data.replace(cases=data.cases.assign(party_key=pd.Series([_KEY, 3, _KEY, None], dtype=object)))
    with pytest.raises(DatasetFileError, match=r"cases\.party_key to cases\.parquet") as caught:
        write_dataset(mixed, tmp_path / "d")
    assert _KEY not in str(caught.value) and caught.value.__cause__ is None


# -- Saved models --------------------------------------------------------------------------
# Every way of loading a model read a pickle. The four loading paths and the planted exploits
# are in tests/test_persistence.py; the probe itself:
class _Exploit:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_probe_a_model_file_cannot_run_code(tmp_path, tiny_model):
    folder = tiny_model.save(tmp_path / "model")
    (folder / "model.pkl").write_bytes(pickle.dumps(_Exploit(tmp_path / "pwned")))
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(folder)
    assert not (tmp_path / "pwned").exists()


# -- predict applies the data contract -------------------------------------------------------
def test_probe_a_case_in_2204_does_not_move_the_forecast(tiny, tiny_model):
    cases = tiny.cases.copy()
    cases.loc[5, "reported_at"] = pd.Timestamp("2204-01-01")
    future = tiny.replace(cases=cases, as_of=None)
    with pytest.raises(ValidationError, match=r"cases.reported_at \[after_as_of\] 1 row\(s\).*case_id='K006'"):
        predict(future, model=tiny_model)
    with pytest.warns(UserWarning, match=r"predict left out 1 row\(s\)"):
        risk = predict(future, model=tiny_model, errors="quarantine")
    expected = predict(tiny.replace(cases=cases.drop(index=5), as_of=None), model=tiny_model)
    pd.testing.assert_frame_equal(risk, expected)
    assert risk["as_of"].iloc[0] < pd.Timestamp("2025-01-01") and risk["probability"].max() > 0.5


def test_probe_the_command_line_refuses_a_case_in_2204(tmp_path, tiny, tiny_model):
    cases = tiny.cases.copy()
    cases.loc[5, "reported_at"] = pd.Timestamp("2204-01-01")
    data = write_dataset(tiny.replace(cases=cases, as_of=None), tmp_path / "data")
    result = CliRunner().invoke(app, ["predict", "--data", str(data), "--model", str(tiny_model.save(tmp_path / "m"))])
    assert result.exit_code == 1 and "[after_as_of]" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("when", ["0001-01-01", "1677-09-22", "1900-01-01"])
def test_probe_implausible_case_times_are_refused(tiny, tiny_model, when):
    cases = tiny.cases.assign(reported_at=tiny.cases["reported_at"].astype(object))
    cases.loc[3, "reported_at"] = when
    with pytest.raises(ValidationError, match=r"cases.reported_at \[before_earliest\] 1 row\(s\).*row 3"):
        validate(tiny.replace(cases=cases))
    with pytest.raises(ValidationError, match="before_earliest"):
        predict(tiny.replace(cases=cases), model=tiny_model)
    older = validate(tiny.replace(cases=cases.drop(index=3)), earliest="1600-01-01")  # the bound is settable
    assert older.counts["rejected"].sum() == 0


def test_probe_a_level_typo_is_refused_not_dropped(tiny, tiny_model):
    grids = tiny.grids.copy()
    grids.loc[grids["grid_id"] == "G07", "level"] = "GRID"
    with pytest.raises(ValidationError, match=r"levels 'grid' \(24 units\), 'GRID' \(1 unit\) sit at the same depth"):
        validate(tiny.replace(grids=grids))
    with pytest.raises(ValidationError, match="level_name"):
        predict(tiny.replace(grids=grids), model=tiny_model)


def test_probe_a_boolean_severity_is_refused(tiny):
    with pytest.raises(ValidationError, match=r"cases.severity \[type\] .* not a boolean"):
        validate(tiny.replace(cases=tiny.cases.assign(severity=True)))


# -- Gridding ----------------------------------------------------------------------------------
EVENTS = pd.DataFrame(
    {"date": ["2019-01-01 10:00"] * 4, "lon": [-87.63, -87.63, -87.64, 92.37], "lat": [41.88, 41.88, 41.89, -41.88]}
)


@pytest.mark.parametrize("cell_m", [float("nan"), float("inf"), 0, -500, True, "500"])
def test_probe_cell_size_must_be_finite_and_positive(cell_m):
    with pytest.raises(ValueError, match="cell_m must be a finite positive number"):
        events_to_dataset(EVENTS, time="date", lon="lon", lat="lat", cell_m=cell_m)


def test_probe_points_off_the_map_are_rejected_with_their_reason():
    events = pd.concat(
        [EVENTS, pd.DataFrame({"date": ["2019-01-02"] * 2, "lon": [190.0, -87.6], "lat": [41.9, 95.0]})],
        ignore_index=True,
    )
    with pytest.warns(UserWarning, match="3 of 6 records left out"):
        report = events_to_dataset(events, time="date", lon="lon", lat="lat")
    reasons = report.rejected.set_index("row")["reason"]
    assert reasons.to_dict() == {3: "lon, lat: projection", 4: "lon, lat: range", 5: "lon, lat: range"}
    assert not report.dataset.grids["grid_id"].str.contains("9223372036854775808").any()  # the antipode's cell


# -- Party keys and messages -------------------------------------------------------------------
@pytest.mark.parametrize("salt", [1, True, "", "   ", "short"])
def test_probe_guessable_salts_are_refused(tiny, salt):
    with pytest.raises((TypeError, ValueError), match="salt must"):
        pseudonymize(tiny, salt=salt)


def test_probe_raw_party_keys_warn_when_trained_on(dataset):
    with pytest.warns(UserWarning, match="party keys are raw.*riskmodel.pseudonymize") as caught:
        train(
            dataset.replace(as_of="2024-09-01"),
            model=HistoricalRateBaseline(),
            horizon=28,
            train_start="2024-04-01",
            track=False,
        )
    assert not any("p-alpha" in str(w.message) for w in caught)


def test_probe_the_quarantine_file_is_pseudonymised_with_a_salt(tmp_path, monkeypatch, dataset):
    secret = "ZHANG-WEI-110101199001011234"
    cases = dataset.cases.assign(severity=[1, 9, 2, 3], party_key=[secret, secret, "p-beta", None])
    folder = write_dataset(dataset.replace(cases=cases), tmp_path / "bad")
    runner = CliRunner()
    raw = runner.invoke(app, ["validate", str(folder), "--quarantine", str(tmp_path / "raw.csv")])
    assert raw.exit_code == 0 and "hold raw party keys" in raw.output
    assert secret in (tmp_path / "raw.csv").read_text()  # as the help says
    monkeypatch.setenv(SALT_VARIABLE, "a district's secret salt")
    hidden = runner.invoke(app, ["validate", str(folder), "--quarantine", str(tmp_path / "hidden.csv")])
    assert hidden.exit_code == 0 and secret not in (tmp_path / "hidden.csv").read_text()
    assert pd.read_csv(tmp_path / "hidden.csv")["party_key"].str.fullmatch("[0-9a-f]{32}").all()


def test_probe_a_huge_value_gives_a_bounded_message(dataset):
    huge = "G" * 1_000_000
    with pytest.raises(ValidationError) as error:
        validate(dataset.replace(cases=dataset.cases.assign(grid_id=[huge, "G1", "G2", "M1"])))
    assert len(str(error.value)) < 1_000 and "GGG..." in str(error.value)


def test_probe_duplicated_index_labels_stay_unambiguous(dataset):
    cases = dataset.cases.assign(severity=[9, 1, 9, 1]).set_axis([7, 7, 7, 7])
    report = validate(dataset.replace(cases=cases), errors="quarantine")
    assert report.rejected["position"].tolist() == [0, 2] and report.rejected["row"].tolist() == [7, 7]
    with pytest.raises(ValidationError, match=r"row 7 \(position 0\).*row 7 \(position 2\)"):
        validate(dataset.replace(cases=cases))


# -- Tracking ----------------------------------------------------------------------------------
_RACE = """
import sys
from riskmodel.datasets import simulate_district
from riskmodel.evaluation import backtest
from riskmodel.models import HistoricalRateBaseline
sys.stdin.readline()  # both processes start together
result = backtest(simulate_district("tiny", seed=0), {"hist": HistoricalRateBaseline()}, cutoffs=["2023-10-02"],
                  horizon=28, experiment="race", progress=False)
print(result.run_id)
"""


def test_probe_two_processes_create_one_new_store_at_once(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=env,
        )
        for _ in range(2)
    ]
    for run in runs:
        run.stdin.write("go\n")
        run.stdin.flush()
    outputs = [run.communicate(timeout=240) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err[-2000:] for _, err in outputs]
    assert not any("could not be logged" in err for _, err in outputs)
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for out, _ in outputs:
        assert client.get_run(out.strip().splitlines()[-1]).info.status == "FINISHED"


def test_probe_a_tracking_failure_never_loses_the_result(tmp_path, monkeypatch, tiny):
    pytest.importorskip("mlflow")
    (tmp_path / "mlflow.db").write_text("not a database")  # a store that cannot be opened
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.warns(
        UserWarning,
        match=r"the backtest finished but could not be logged to the MLflow store "
        r"sqlite:///.*mlflow.db",
    ):
        result = backtest(tiny, {"hist": HistoricalRateBaseline()}, cutoffs=["2023-10-02"], horizon=28, progress=False)
    assert result.run_id is None and len(result.leaderboard) == 2  # the model and the oracle
    with pytest.warns(UserWarning, match="the training finished but could not be logged"):
        trained = train(tiny, model=HistoricalRateBaseline(), horizon=28, register=True)
    assert trained.model_uri is None and len(predict(tiny, model=trained)) == 25
