"""Pseudonymous party keys and teams: a keyed hash, so raw identities never travel further."""

from __future__ import annotations

import hashlib
import os
import warnings

import pandas as pd

from .coerce import to_text
from .contract import Dataset

__all__ = ["pseudonymize", "SALT_VARIABLE"]

#: The environment variable read when no salt is passed.
SALT_VARIABLE = "RISKMODEL_PARTY_SALT"
#: What a pseudonym looks like: 32 hexadecimal characters.
PSEUDONYM = "[0-9a-f]{32}"
_MIN_SALT = 16


def pseudonymize(dataset: Dataset, *, salt: str | bytes | None = None) -> Dataset:
    """Replace every ``party_key`` and every visit's ``team`` by a keyed BLAKE2b hash.

    The same key and salt always give the same pseudonym, so repeat parties are
    still recognised; without the salt a pseudonym cannot be traced back by
    hashing guessed names. Raw keys are never logged nor put in a message.

    Parameters
    ----------
    dataset : Dataset
        Data whose ``cases`` may have a ``party_key`` column and whose ``visits``
        may have a ``team`` column (without either, it is returned unchanged).
    salt : str or bytes, optional
        The secret key of the hash: text or bytes of at least 16 characters, not
        blank (a number or a boolean is refused: ``1`` and ``True`` would be
        guessed). Defaults to the environment variable ``RISKMODEL_PARTY_SALT``;
        one of the two is required.

    Returns
    -------
    Dataset
        The same data with ``party_key`` and ``team`` replaced by 32 hexadecimal
        characters (missing keys stay missing).

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel import Dataset, pseudonymize
    >>> cases = pd.DataFrame({"case_id": ["c1", "c2"], "party_key": ["Zhang Wei", "Zhang Wei"]})
    >>> ds = pseudonymize(Dataset(cases=cases, grids=pd.DataFrame()), salt="a secret of 16+ chars")
    >>> ds.cases["party_key"].nunique(), len(ds.cases["party_key"].iloc[0])
    (1, 32)
    """
    key = salt_key(salt)
    changes = {}
    if "party_key" in dataset.cases.columns:
        changes["cases"] = dataset.cases.assign(party_key=hash_keys(dataset.cases["party_key"], key))
    if dataset.visits is not None and "team" in dataset.visits.columns:
        changes["visits"] = dataset.visits.assign(team=hash_keys(dataset.visits["team"], key))
    return dataset.replace(**changes) if changes else dataset


def salt_key(salt: str | bytes | None = None) -> bytes:
    """The hash key of ``salt`` (default: ``RISKMODEL_PARTY_SALT``), refusing a weak one."""
    salt = os.environ.get(SALT_VARIABLE) if salt is None else salt
    if salt is None:
        raise ValueError(f"pseudonymize needs a salt: pass salt=... or set the environment variable {SALT_VARIABLE}")
    if isinstance(salt, bool) or not isinstance(salt, (str, bytes)):
        raise TypeError(f"the salt must be text or bytes, got a {type(salt).__name__} (a number is guessable)")
    if len(salt.strip()) < _MIN_SALT:
        raise ValueError(
            f"the salt must hold at least {_MIN_SALT} characters (or bytes), not counting blanks at "
            f"its ends, got {len(salt.strip())}: a short salt can be guessed"
        )
    key = salt.encode() if isinstance(salt, str) else bytes(salt)
    return key if len(key) <= hashlib.blake2b.MAX_KEY_SIZE else hashlib.sha256(key).digest()


def hash_keys(keys: pd.Series, key: bytes) -> pd.Series:
    """Each key's pseudonym under the hash key ``key`` (see :func:`salt_key`); missing
    and blank keys stay missing, and 1234 and 1234.0 are one party."""
    raw = to_text(keys).astype("str")
    present = raw.notna()
    hashed = {
        value: hashlib.blake2b(value.encode(), key=key, digest_size=16).hexdigest() for value in pd.unique(raw[present])
    }
    return raw.map(hashed).where(present)


def raw_keys(keys: pd.Series) -> pd.Series:
    """How many of ``keys`` are raw (present and not a pseudonym of 32 hexadecimal
    characters), and how many are present: a Series ``[raw, present]`` that adds up over
    parts of the keys (the Dask path sums it over partitions)."""
    present = to_text(keys).dropna()
    return pd.Series([int((~present.astype("str").str.fullmatch(PSEUDONYM)).sum()), len(present)])


def warn_raw_keys(dataset: Dataset, action: str, counts: pd.Series | None = None) -> None:
    """One warning when the cases' ``party_key`` holds values that are not pseudonyms:
    raw identities are about to be ``action``. ``counts``: :func:`raw_keys` of the keys,
    when computed elsewhere (over partitions)."""
    if "party_key" not in dataset.cases.columns:
        return
    raw, present = raw_keys(dataset.cases["party_key"]) if counts is None else counts
    if raw:
        warnings.warn(
            f"{raw} of the {present} party keys are raw, not pseudonyms, and are being {action}: call "
            f"riskmodel.pseudonymize(dataset) first (its salt from salt= or {SALT_VARIABLE})",
            UserWarning,
            stacklevel=3,
        )
