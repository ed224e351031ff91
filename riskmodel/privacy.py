"""Pseudonymous party keys: a keyed hash, so raw identities never travel further."""

from __future__ import annotations

import hashlib
import os

import pandas as pd

from .coerce import to_text
from .dataset import Dataset

__all__ = ["pseudonymize", "SALT_VARIABLE"]

#: The environment variable read when no salt is passed.
SALT_VARIABLE = "RISKMODEL_PARTY_SALT"


def pseudonymize(dataset: Dataset, *, salt: str | bytes | None = None) -> Dataset:
    """Replace every ``party_key`` by a keyed BLAKE2b hash of it.

    The same key and salt always give the same pseudonym, so repeat parties are
    still recognised; without the salt a pseudonym cannot be traced back by
    hashing guessed names. Raw keys are never logged nor put in a message.

    Parameters
    ----------
    dataset : Dataset
        Data whose ``cases`` may have a ``party_key`` column (otherwise it is
        returned unchanged).
    salt : str or bytes, optional
        The secret key of the hash. Defaults to the environment variable
        ``RISKMODEL_PARTY_SALT``; one of the two is required.

    Returns
    -------
    Dataset
        The same data with ``party_key`` replaced by 32 hexadecimal characters
        (missing keys stay missing).

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel import Dataset, pseudonymize
    >>> cases = pd.DataFrame({"case_id": ["c1", "c2"], "party_key": ["Zhang Wei", "Zhang Wei"]})
    >>> ds = pseudonymize(Dataset(cases=cases, grids=pd.DataFrame()), salt="s3cret")
    >>> ds.cases["party_key"].nunique(), len(ds.cases["party_key"].iloc[0])
    (1, 32)
    """
    salt = os.environ.get(SALT_VARIABLE) if salt is None else salt
    if not salt:
        raise ValueError(
            f"pseudonymize needs a salt: pass salt=... or set the environment variable {SALT_VARIABLE}"
        )
    key = salt.encode() if isinstance(salt, str) else bytes(salt)
    if len(key) > hashlib.blake2b.MAX_KEY_SIZE:
        key = hashlib.sha256(key).digest()
    if "party_key" not in dataset.cases.columns:
        return dataset
    raw = to_text(dataset.cases["party_key"]).astype("str")  # 1234 and 1234.0 are one party; "" none
    present = raw.notna()
    hashed = {
        value: hashlib.blake2b(value.encode(), key=key, digest_size=16).hexdigest()
        for value in pd.unique(raw[present])
    }
    pseudonyms = raw.map(hashed).where(present)
    return dataset.replace(cases=dataset.cases.assign(party_key=pseudonyms))
