"""Saved models that cannot run code when they are loaded.

A model folder holds:

- ``model.json``, the manifest: the model's metadata, its feature builder and tier
  policy as JSON, and the SHA-256 of every other file;
- ``estimator.skops``: the fitted estimator in skops' format, which rebuilds only
  the types it is allowed to (:data:`TRUSTED_TYPES` and scikit-learn's own);
- ``booster-<n>.txt``: each LightGBM booster in LightGBM's own text format;
- ``model.sig``, when ``RISKMODEL_MODEL_KEY`` is set: an HMAC-SHA256 of the manifest.

Nothing is deserialised before every file has been checked against the manifest:
a changed, missing or extra file is refused, naming the file. No pickle is read,
except by :func:`riskmodel.training.convert_legacy`, which a user calls knowingly.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import hmac
import io
import json
import os
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import skops.io as sio

from .checksums import content_digest
from .features import CaseFeatureBuilder, GridPanelBuilder, Target
from .models import TierPolicy

__all__ = ["KEY_VARIABLE", "LEGACY_FILE", "MANIFEST", "TRUSTED_TYPES", "ModelFileError", "read_parts", "write_parts"]

MANIFEST = "model.json"
SIGNATURE = "model.sig"
LEGACY_FILE = "model.pkl"
ESTIMATOR = "estimator.skops"
#: The environment variable holding the key that signs and checks model folders.
KEY_VARIABLE = "RISKMODEL_MODEL_KEY"
FORMAT = 2  # 1 was a pickle

#: The types, beyond scikit-learn's, NumPy's and SciPy's (which skops trusts), that an
#: estimator file may rebuild. Boosters are not among them: they are text files.
TRUSTED_TYPES = (
    "collections.OrderedDict",
    "collections.defaultdict",
    "numpy.dtype",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "riskmodel.models.baselines.HistoricalRateBaseline",
    "riskmodel.models.baselines.KDEBaseline",
    "riskmodel.models.baselines.LastPeriodBaseline",
    "riskmodel.models.baselines.SmoothedRateBaseline",
    "riskmodel.models.baselines.TimeWeightedRateBaseline",
    "riskmodel.models.calibration.Calibrator",
    "riskmodel.models.classifiers.GBMCount",
    "riskmodel.models.classifiers.GBMRisk",
    "riskmodel.models.classifiers.LogisticRisk",
    "riskmodel.models.ensemble.EnsembleCount",
    "riskmodel.models.escalation.EscalationClassifier",
    "riskmodel.models.outliers.ProfileOutlier",
    "riskmodel.models.scorecard.Scorecard",
    "riskmodel.models.spikes.SpikeDetector",
)
_BUILDERS = {cls.__name__: cls for cls in (GridPanelBuilder, CaseFeatureBuilder)}


class ModelFileError(ValueError):
    """A model folder that cannot be loaded safely; the message names the folder and the file."""


# -- writing --------------------------------------------------------------------------
def write_parts(folder: Path, *, meta: dict, estimator, builder, tier_policy, units) -> Path:
    """Write a model's parts to ``folder`` (see the module's docstring); returns it.

    Raises
    ------
    ModelFileError
        When the folder holds files that are not a saved model's, or the estimator
        holds a type that could not be loaded back (not in :data:`TRUSTED_TYPES`).
    """
    folder.mkdir(parents=True, exist_ok=True)
    foreign = [p.name for p in folder.iterdir() if not _ours(p.name)]
    if foreign:
        raise ModelFileError(
            f"{folder} holds files that are not a saved model's ({sorted(foreign)[:5]}); "
            "save to an empty or a model folder"
        )
    detached, boosters = _detach_boosters(estimator)
    buffer = io.BytesIO()
    sio.dump(detached, buffer)
    blob = buffer.getvalue()
    untrusted = [t for t in sio.get_untrusted_types(data=blob) if t not in TRUSTED_TYPES]
    if untrusted:
        raise ModelFileError(
            f"the estimator holds type(s) {untrusted} that a saved model may not rebuild; "
            f"riskmodel trusts scikit-learn's types and {list(TRUSTED_TYPES)}"
        )
    files = {ESTIMATOR: blob}
    booster_specs = []
    for n, (path, booster) in enumerate(boosters):
        name = f"booster-{n}.txt"
        files[name] = booster.model_to_string(num_iteration=-1).encode()
        booster_specs.append({"file": name, "path": path, "best_iteration": int(booster.best_iteration)})
    for path in folder.iterdir():  # an earlier model's files must not come back
        path.unlink()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    manifest = {
        "format": FORMAT,
        **meta,
        "builder": {
            "class": type(builder).__name__,
            "params": _encode(builder.get_params()),
            "learned": _encode({k: v for k, v in vars(builder).items() if k.endswith("_")}),
        },
        "tier_policy": _encode(tier_policy.get_params()),
        "units": None if units is None else [str(u) for u in units],
        "boosters": booster_specs,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    manifest["manifest_sha256"] = content_digest(manifest)
    text = json.dumps(manifest, indent=1).encode()
    (folder / MANIFEST).write_bytes(text)
    key = _key()
    if key is not None:
        (folder / SIGNATURE).write_text(_sign(key, text))
    return folder


def _ours(name: str) -> bool:
    return name in (MANIFEST, SIGNATURE, LEGACY_FILE, ESTIMATOR) or (
        name.startswith("booster-") and name.endswith(".txt")
    )


def _detach_boosters(obj, path=()):
    """``obj`` with every fitted LightGBM model's booster taken out (copies on the way,
    the original untouched), and the boosters with their paths of attribute names."""
    if isinstance(obj, lgb.LGBMModel) and getattr(obj, "_Booster", None) is not None:
        twin = copy.copy(obj)
        twin._Booster = None  # put back by _attach_booster after loading
        return twin, [(list(path), obj.booster_)]
    if isinstance(obj, (list, tuple)):
        parts = [_detach_boosters(item, (*path, i)) for i, item in enumerate(obj)]
        found = [b for _, bs in parts for b in bs]
        return (type(obj)(p for p, _ in parts) if found else obj), found
    if isinstance(obj, dict):  # an ensemble's members by name
        parts = {k: _detach_boosters(v, (*path, k)) for k, v in obj.items()}
        found = [b for _, bs in parts.values() for b in bs]
        return ({k: p for k, (p, _) in parts.items()} if found else obj), found
    if type(obj).__module__.split(".")[0] in ("riskmodel", "sklearn") and hasattr(obj, "__dict__"):
        parts = {k: _detach_boosters(v, (*path, k)) for k, v in vars(obj).items()}
        found = [b for _, bs in parts.values() for b in bs]
        if not found:
            return obj, []
        twin = copy.copy(obj)
        twin.__dict__.update({k: p for k, (p, _) in parts.items()})
        return twin, found
    return obj, []


# -- reading --------------------------------------------------------------------------
def read_parts(folder) -> dict:
    """The parts :func:`write_parts` wrote: ``meta`` (the manifest), ``estimator``,
    ``builder``, ``tier_policy`` and ``units``, after checking every file.

    Raises
    ------
    FileNotFoundError
        When ``folder`` holds no saved model.
    ModelFileError
        Naming the file: a pickle of an earlier version, a changed, missing or extra
        file, a missing or wrong signature (with ``RISKMODEL_MODEL_KEY`` set), or a
        type that may not be rebuilt.
    """
    folder = Path(folder)
    if (folder / LEGACY_FILE).is_file():
        raise ModelFileError(
            f"{folder} holds a model saved by riskmodel 0.1 as a pickle ({LEGACY_FILE}), which can run code when "
            "it is loaded, so it is not loaded. If you trust its origin, convert it once with "
            f"riskmodel.training.convert_legacy({str(folder)!r}, trusted=True), or train it again"
        )
    if not (folder / MANIFEST).is_file():
        raise FileNotFoundError(f"no saved model at {folder} (expected the file {folder / MANIFEST})")
    text = (folder / MANIFEST).read_bytes()
    _check_signature(folder, text)
    try:
        manifest = json.loads(text)
        files = dict(manifest["files"])
        checksum = manifest.pop("manifest_sha256")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ModelFileError(
            f"{folder / MANIFEST} is not a riskmodel model manifest (riskmodel 0.1 kept the model "
            f"in {LEGACY_FILE}; train it again)"
        ) from None
    if manifest.get("format") != FORMAT:
        raise ModelFileError(
            f"{folder / MANIFEST} has format {manifest.get('format')!r}; this riskmodel reads format {FORMAT}"
        )
    if checksum != content_digest(manifest):
        raise ModelFileError(f"{folder / MANIFEST} does not match its own checksum: it was changed after saving")
    data = _checked_files(folder, files)
    try:
        estimator = _load_estimator(data[ESTIMATOR], folder)
        for spec in manifest["boosters"]:
            booster = lgb.Booster(model_str=data[spec["file"]].decode())
            booster.best_iteration = int(spec["best_iteration"])
            _attach_booster(estimator, spec["path"], booster)
        builder = _builder(manifest["builder"])
        tier_policy = TierPolicy(**_decode(manifest["tier_policy"]))
    except ModelFileError:
        raise
    except Exception as error:  # a file that passed its hash but does not hold what the manifest says
        raise ModelFileError(
            f"cannot rebuild the model in {folder}: {type(error).__name__}: {str(error)[:200]}"
        ) from None
    units = manifest.get("units")
    return {
        "meta": manifest,
        "estimator": estimator,
        "builder": builder,
        "tier_policy": tier_policy,
        "units": None if units is None else pd.Index(units, dtype="str"),
    }


def _checked_files(folder: Path, files: dict) -> dict[str, bytes]:
    """Every listed file's bytes, each matching its hash; refuses extra files."""
    names = [name for name in files if isinstance(name, str)]
    if (
        len(names) != len(files)
        or not all(_ours(name) and "/" not in name and "\\" not in name for name in names)
        or ESTIMATOR not in names
    ):
        raise ModelFileError(f"{folder / MANIFEST} lists files that are not a saved model's: {sorted(map(str, files))}")
    present = {p.name for p in folder.iterdir()}
    extra = sorted(present - set(names) - {MANIFEST, SIGNATURE})
    if extra:
        raise ModelFileError(
            f"{folder} holds file(s) its manifest does not list: {extra[:5]}; a model folder holds only its own files"
        )
    data = {}
    for name in names:
        path = folder / name
        if not path.is_file():
            raise ModelFileError(f"{path} is missing (listed in {MANIFEST})")
        data[name] = path.read_bytes()
        if hashlib.sha256(data[name]).hexdigest() != files[name]:
            raise ModelFileError(f"{path} does not match its SHA-256 in {MANIFEST}: it was changed after saving")
    return data


def _load_estimator(blob: bytes, folder: Path):
    untrusted = sio.get_untrusted_types(data=blob)
    refused = [t for t in untrusted if t not in TRUSTED_TYPES]
    if refused:
        raise ModelFileError(
            f"{folder / ESTIMATOR} holds type(s) {refused[:5]} that a saved model may not rebuild; it is not loaded"
        )
    return sio.loads(blob, trusted=untrusted)


def _attach_booster(estimator, path: list, booster: lgb.Booster) -> None:
    holder = estimator
    for step in path:
        holder = holder[step] if isinstance(holder, (list, tuple, dict)) else getattr(holder, step)
    if not isinstance(holder, lgb.LGBMModel):
        raise ModelFileError(f"the booster path {path} does not lead to a LightGBM model")
    holder._Booster = booster


# -- signing --------------------------------------------------------------------------
def _key() -> bytes | None:
    key = os.environ.get(KEY_VARIABLE)
    if key is None:
        return None
    if len(key.strip()) < 16:
        raise ModelFileError(f"{KEY_VARIABLE} must hold a secret of at least 16 characters")
    return key.encode()


def _sign(key: bytes, text: bytes) -> str:
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def _check_signature(folder: Path, text: bytes) -> None:
    key = _key()
    if key is None:
        return
    signature = folder / SIGNATURE
    if not signature.is_file():
        raise ModelFileError(
            f"{folder} is not signed ({SIGNATURE} is missing) and {KEY_VARIABLE} is set: only signed models are loaded"
        )
    if not hmac.compare_digest(signature.read_text().strip(), _sign(key, text)):
        raise ModelFileError(
            f"{folder / SIGNATURE} does not match {MANIFEST} under the key in {KEY_VARIABLE}: "
            "the model was changed or signed with another key"
        )


# -- JSON of the builder and the tier policy ---------------------------------------------
def _builder(spec: dict):
    cls = _BUILDERS.get(spec.get("class"))
    if cls is None:
        raise ModelFileError(f"unknown feature builder {spec.get('class')!r}; known: {sorted(_BUILDERS)}")
    # A builder saved before ``count`` existed counted every report: it still does.
    builder = cls(**({"count": "reports"} | _decode(spec["params"])))
    for name, value in _decode(spec["learned"]).items():
        if not name.endswith("_"):
            raise ModelFileError(f"the builder's learned attribute {name!r} does not end in '_'")
        setattr(builder, name, value)
    return builder


def _encode(value):
    """JSON of the values a builder or a tier policy holds; tagged where JSON has no type."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else {"$float": str(float(value))}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"$dict": {k: _encode(v) for k, v in value.items()}}
    if isinstance(value, Target):
        return {"$target": _encode(dataclasses.asdict(value))}
    if isinstance(value, pd.DatetimeIndex):
        return {"$times": [t.isoformat() for t in value]}
    if isinstance(value, pd.Timestamp):
        return {"$time": value.isoformat()}
    if isinstance(value, pd.Timedelta):
        return {"$timedelta": value.isoformat()}
    if isinstance(value, pd.DateOffset):
        return {"$offset": value.freqstr} if type(value) is not pd.DateOffset else {"$dateoffset": value.kwds}
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return {"$array": [_encode(v) for v in value.tolist()], "dtype": str(value.dtype)}
    raise ModelFileError(f"cannot save a value of type {type(value).__name__} in a model's JSON: {value!r:.80}")


_DECODERS = {
    "$float": float,
    "$tuple": lambda v: tuple(_decode(x) for x in v),
    "$dict": lambda v: {k: _decode(x) for k, x in v.items()},
    "$target": lambda v: Target(**_decode(v)),
    "$times": lambda v: pd.DatetimeIndex(v).as_unit("us"),
    "$time": pd.Timestamp,
    "$timedelta": pd.Timedelta,
    "$offset": pd.tseries.frequencies.to_offset,
    "$dateoffset": lambda v: pd.DateOffset(**v),
}


def _decode(value):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "$array" in value:
            return np.array([_decode(v) for v in value["$array"]], dtype=value["dtype"])
        ((tag, inner),) = value.items()
        return _DECODERS[tag](inner)
    return value
