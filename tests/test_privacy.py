from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from riskmodel import pseudonymize, validate
from riskmodel.privacy import SALT_VARIABLE
from riskmodel.problems import SECRET_COLUMNS

from .conftest import make_plans, make_visits

SECRET = "a district's secret salt"


def test_keyed_hash_keeps_repeat_parties(dataset):
    hashed = pseudonymize(dataset, salt=SECRET).cases["party_key"]
    assert hashed.iloc[0] == hashed.iloc[2] != hashed.iloc[1]
    assert hashed.isna().tolist() == [False, False, False, True]
    assert hashed.str.fullmatch("[0-9a-f]{32}").iloc[:3].all()
    assert not hashed.isin(["p-alpha", "p-beta"]).any()
    # Another salt, other pseudonyms; the same salt, the same ones.
    assert pseudonymize(dataset, salt="another salt of 16+").cases["party_key"].iloc[0] != hashed.iloc[0]
    assert pseudonymize(dataset, salt=SECRET).cases["party_key"].equals(hashed)
    assert validate(pseudonymize(dataset, salt=SECRET)).counts["rejected"].sum() == 0


def test_teams_are_hashed_like_party_keys(dataset):
    hashed = pseudonymize(dataset.replace(visits=make_visits(), plans=make_plans()), salt=SECRET)
    teams = hashed.visits["team"]
    assert teams.isna().tolist() == [False, False, False, True, False]
    assert teams.iloc[0] == teams.iloc[2] != teams.iloc[1] == teams.iloc[4]
    assert teams.dropna().str.fullmatch("[0-9a-f]{32}").all() and not teams.str.startswith("team-").any()
    assert hashed.cases["party_key"].equals(pseudonymize(dataset, salt=SECRET).cases["party_key"])
    assert validate(hashed).counts["rejected"].sum() == 0
    # Visits without teams, or no visits, are returned as they are.
    no_team = dataset.replace(visits=make_visits().drop(columns="team"), cases=dataset.cases.drop(columns="party_key"))
    assert pseudonymize(no_team, salt=SECRET) is no_team
    assert "team" in SECRET_COLUMNS


def test_salt_from_environment(dataset, monkeypatch):
    monkeypatch.setenv(SALT_VARIABLE, SECRET)
    assert pseudonymize(dataset).cases["party_key"].equals(pseudonymize(dataset, salt=SECRET).cases["party_key"])


def test_salt_is_required(dataset, monkeypatch):
    monkeypatch.delenv(SALT_VARIABLE, raising=False)
    with pytest.raises(ValueError, match=SALT_VARIABLE):
        pseudonymize(dataset)


def test_keys_are_normalised_before_hashing(dataset):
    # An integer column with a gap is read as floats: 1234.0 is still party 1234.
    floats = pseudonymize(
        dataset.replace(cases=dataset.cases.assign(party_key=[1234.0, 7.0, 1234.0, np.nan])), salt=SECRET
    ).cases["party_key"]
    ints = pseudonymize(dataset.replace(cases=dataset.cases.assign(party_key=[1234, 7, 1234, 8])), salt=SECRET).cases[
        "party_key"
    ]
    assert floats.iloc[:3].tolist() == ints.iloc[:3].tolist() and pd.isna(floats.iloc[3])
    blank = pseudonymize(dataset.replace(cases=dataset.cases.assign(party_key=["a", " ", "", "a"])), salt=SECRET)
    assert blank.cases["party_key"].isna().tolist() == [False, True, True, False]


def test_long_salt(dataset):
    assert len(pseudonymize(dataset, salt="x" * 200).cases["party_key"].iloc[0]) == 32


@pytest.mark.parametrize(
    "salt, error",
    [
        (1, TypeError),
        (True, TypeError),
        (12.5, TypeError),
        ("short", ValueError),
        (" " * 20, ValueError),
        (b"0123456789", ValueError),
    ],
)
def test_weak_salts_are_refused(dataset, salt, error):
    with pytest.raises(error, match="salt must"):
        pseudonymize(dataset, salt=salt)


def test_training_on_raw_keys_warns_once(dataset):
    from riskmodel.privacy import warn_raw_keys

    with pytest.warns(UserWarning, match=r"3 of the 3 party keys are raw.*riskmodel.pseudonymize") as caught:
        warn_raw_keys(dataset, "trained on")
    assert len(caught) == 1 and "p-alpha" not in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_raw_keys(pseudonymize(dataset, salt=SECRET), "trained on")
