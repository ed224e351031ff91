"""Saved models: no pickle, every file checked, signing, the legacy format, and planted exploits
that must not run on any of the four ways a model is loaded."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from riskmodel import TrainedModel, load_model, predict, train
from riskmodel.cli import app
from riskmodel.datasets import simulate_district
from riskmodel.io import write_dataset
from riskmodel.models import GBMCount, case_models, grid_models
from riskmodel.persistence import KEY_VARIABLE, ModelFileError
from riskmodel.training import convert_legacy

FAST = dict(n_estimators=20, min_child_samples=5, n_jobs=1)


class Exploit:
    """Unpickling it creates the file ``marker``: the side effect the tests look for."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


class Rebuilt:
    """An object that skops would rebuild through ``__setstate__``, which creates its marker."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __setstate__(self, state):
        open(state["marker"], "w").close()


@pytest.fixture(scope="module")
def tiny():
    return simulate_district("tiny", seed=0)


@pytest.fixture(scope="module")
def trained(tiny):
    return train(tiny, model=GBMCount(**FAST), horizon=28, track=False)


@pytest.fixture
def folder(tmp_path, trained):
    return trained.save(tmp_path / "model")


def rehash(folder, name):
    """Rewrite the manifest as an attacker would: the file's hash and the manifest's checksum fixed."""
    from riskmodel.checksums import content_digest

    manifest = json.loads((folder / "model.json").read_text())
    manifest.pop("manifest_sha256")
    manifest["files"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    manifest["manifest_sha256"] = content_digest(manifest)
    (folder / "model.json").write_text(json.dumps(manifest))


ROSTER = [(name, model, None) for name, model in grid_models(**FAST).items()] + [
    (name, model, "escalation") for name, model in case_models(**FAST).items()
]


@pytest.mark.parametrize("name, model, target", ROSTER, ids=[f"{t or 'grid'}-{n}" for n, _, t in ROSTER])
def test_save_load_predict_is_bit_identical_for_every_family(tmp_path, tiny, name, model, target):
    trained = train(tiny, model=model, horizon=28, target=target, track=False)
    folder = trained.save(tmp_path / name)
    for path in folder.iterdir():  # no pickle anywhere: pickles start with the protocol byte
        assert not path.read_bytes().startswith(b"\x80"), path
    back = TrainedModel.load(folder)
    as_of = pd.Timestamp("2023-10-02") if target else None
    pd.testing.assert_frame_equal(
        predict(tiny, as_of=as_of, model=back, drivers=None),
        predict(tiny, as_of=as_of, model=trained, drivers=None),
        check_exact=True,
    )
    params, again = trained.builder.get_params(), back.builder.get_params()
    if "cutoffs" in params:
        assert pd.DatetimeIndex(again.pop("cutoffs")).equals(pd.DatetimeIndex(params.pop("cutoffs")))
    assert again == params
    assert back.units is None if trained.units is None else back.units.equals(trained.units)


def test_boosters_are_lightgbm_text_files(folder, trained, tiny):
    assert sorted(p.name for p in folder.iterdir()) == ["booster-0.txt", "estimator.skops", "model.json"]
    booster = lgb.Booster(model_file=str(folder / "booster-0.txt"))  # LightGBM alone reads it
    X = trained.features(tiny, tiny.end)
    np.testing.assert_array_equal(booster.predict(X.to_numpy(dtype="float64")), trained.estimator.predict_expected(X))
    manifest = json.loads((folder / "model.json").read_text())
    assert manifest["schema_hash"] == trained.schema_hash and manifest["builder"]["class"] == "GridPanelBuilder"


def test_a_changed_missing_or_extra_file_is_refused_by_name(folder):
    original = (folder / "booster-0.txt").read_bytes()
    (folder / "booster-0.txt").write_bytes(original.replace(b"leaf_value=", b"leaf_value=1", 1))
    with pytest.raises(ModelFileError, match=r"booster-0.txt does not match its SHA-256"):
        load_model(folder)
    (folder / "booster-0.txt").unlink()
    with pytest.raises(ModelFileError, match=r"booster-0.txt is missing"):
        load_model(folder)
    (folder / "booster-0.txt").write_bytes(original)
    (folder / "notes.txt").write_text("hello")
    with pytest.raises(ModelFileError, match=r"does not list: \['notes.txt'\]"):
        load_model(folder)
    (folder / "notes.txt").unlink()
    manifest = json.loads((folder / "model.json").read_text())
    manifest["tier_policy"]["$dict"]["cut_points"]["$tuple"][0] = 0.9  # a value edited by hand
    (folder / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="does not match its own checksum"):
        load_model(folder)


def test_a_model_saved_before_count_existed_counts_reports(folder, trained):
    from riskmodel.checksums import content_digest

    assert load_model(folder).builder.count == "disputes"
    manifest = json.loads((folder / "model.json").read_text())
    manifest.pop("manifest_sha256")
    del manifest["builder"]["params"]["$dict"]["count"]  # as saved by an earlier version
    manifest["manifest_sha256"] = content_digest(manifest)
    (folder / "model.json").write_text(json.dumps(manifest))
    assert load_model(folder).builder.count == "reports"


def test_saving_refuses_a_folder_of_other_files(tmp_path, trained):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.docx").write_bytes(b"x")
    with pytest.raises(ModelFileError, match=r"not a saved model's \(\['thesis.docx'\]\)"):
        trained.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.docx").exists()


def test_a_planted_pickle_does_not_run(tmp_path, folder):
    marker = tmp_path / "pwned"
    exploit = pickle.dumps(Exploit(marker))
    (folder / "model.pkl").write_bytes(exploit)  # as riskmodel 0.1 kept it
    with pytest.raises(ModelFileError, match=r"pickle .*convert_legacy\(.*trusted=True\)"):
        load_model(folder)
    (folder / "model.pkl").unlink()
    (folder / "evil.pkl").write_bytes(exploit)  # an extra file
    with pytest.raises(ModelFileError, match=r"does not list: \['evil.pkl'\]"):
        load_model(folder)
    (folder / "evil.pkl").unlink()
    (folder / "estimator.skops").write_bytes(exploit)  # in place of the estimator
    with pytest.raises(ModelFileError, match="estimator.skops does not match its SHA-256"):
        load_model(folder)
    rehash(folder, "estimator.skops")  # and the manifest rewritten to match
    with pytest.raises(ModelFileError, match="cannot rebuild the model"):
        load_model(folder)
    assert not marker.exists()


def test_an_untrusted_type_is_not_rebuilt(tmp_path, folder):
    marker = tmp_path / "pwned"
    (folder / "estimator.skops").write_bytes(sio.dumps(Rebuilt(marker)))
    rehash(folder, "estimator.skops")
    with pytest.raises(ModelFileError, match=r"estimator.skops holds type\(s\) \['[\w.]*Rebuilt'\]"):
        load_model(folder)
    assert not marker.exists()


def test_signed_models(tmp_path, monkeypatch, trained, tiny):
    monkeypatch.setenv(KEY_VARIABLE, "a-deployment-secret-0001")
    signed = trained.save(tmp_path / "signed")
    assert (signed / "model.sig").is_file()
    pd.testing.assert_frame_equal(predict(tiny, model=TrainedModel.load(signed)), predict(tiny, model=trained))
    monkeypatch.setenv(KEY_VARIABLE, "another-secret-of-16+")
    with pytest.raises(ModelFileError, match="does not match model.json under the key"):
        TrainedModel.load(signed)
    monkeypatch.delenv(KEY_VARIABLE)
    unsigned = trained.save(tmp_path / "unsigned")
    assert not (unsigned / "model.sig").exists()
    monkeypatch.setenv(KEY_VARIABLE, "a-deployment-secret-0001")
    with pytest.raises(ModelFileError, match="is not signed"):
        TrainedModel.load(unsigned)
    monkeypatch.setenv(KEY_VARIABLE, "short")
    with pytest.raises(ModelFileError, match="at least 16 characters"):
        trained.save(tmp_path / "weak")


def test_a_legacy_pickle_converts_only_when_trusted(tmp_path, trained, tiny):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps(trained))
    (folder / "model.json").write_text(json.dumps({"kind": "grid", "version": "0.1.0"}))
    with pytest.raises(ValueError, match="pass trusted=True"):
        convert_legacy(folder)
    assert (folder / "model.pkl").exists()
    convert_legacy(folder, trusted=True)
    assert not (folder / "model.pkl").exists()
    pd.testing.assert_frame_equal(predict(tiny, model=load_model(folder)), predict(tiny, model=trained))


def test_the_command_line_and_the_default_folder_refuse_a_tampered_model(tmp_path, monkeypatch, trained, tiny):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    marker = tmp_path / "pwned"
    default = trained.save()  # models/dispute-risk-grid in the working directory
    (default / "estimator.skops").write_bytes(pickle.dumps(Exploit(marker)))
    with pytest.raises(ModelFileError, match="estimator.skops does not match"):
        predict(tiny)
    data = write_dataset(tiny, tmp_path / "data")
    result = CliRunner().invoke(app, ["predict", "--data", str(data), "--model", str(default)])
    assert result.exit_code == 1 and "estimator.skops does not match its SHA-256" in result.output
    assert "Traceback" not in result.output and not marker.exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_tampered_registry_artifact_is_refused(tmp_path, monkeypatch, trained, tiny):
    pytest.importorskip("mlflow")
    from riskmodel.tracking import log_model

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    log_model(trained, example=trained.features(tiny, tiny.end).iloc[:5], register=True)
    uri = "models:/dispute-risk-grid@champion"  # not loaded before: the cache has not seen it
    marker = tmp_path / "pwned"
    (skops_file,) = (tmp_path / "mlartifacts").rglob("artifacts/model/estimator.skops")
    skops_file.write_bytes(pickle.dumps(Exploit(marker)))
    with pytest.raises(ModelFileError, match="estimator.skops does not match its SHA-256"):
        predict(tiny)  # the default model is the registry's champion
    with pytest.raises(ModelFileError, match="estimator.skops does not match its SHA-256"):
        load_model(uri)
    import mlflow

    with pytest.raises(Exception, match="estimator.skops does not match its SHA-256"):
        mlflow.pyfunc.load_model(uri)  # MLflow's own loader reads the same checked folder
    assert not marker.exists()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_corrupted_model_folder_loads_the_same_or_is_refused(tmp_path_factory, trained, tiny, data):
    folder = trained.save(tmp_path_factory.mktemp("fuzz") / "model")
    expected = predict(tiny, model=trained)
    path = folder / data.draw(st.sampled_from(sorted(p.name for p in folder.iterdir())))
    raw = bytearray(path.read_bytes())
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1), label="length")]
    else:
        for position in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=4), label="flips"):
            raw[position] ^= data.draw(st.integers(1, 255), label="mask")
    path.write_bytes(bytes(raw))
    try:
        back = TrainedModel.load(folder)
    except ModelFileError as error:
        assert str(folder) in str(error)
        return
    pd.testing.assert_frame_equal(predict(tiny, model=back), expected, check_exact=True)
    shutil.rmtree(folder)
