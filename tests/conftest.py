from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings

from riskmodel import Dataset

# Property tests draw the same examples on every run, so CI is reproducible; set
# HYPOTHESIS_PROFILE=explore for fresh random examples.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def make_dataset() -> Dataset:
    """A small valid dataset: one street, one community, two grids, one building."""
    grids = pd.DataFrame(
        {
            "grid_id": ["S1", "C1", "G1", "G2", "M1"],
            "parent_id": [None, "S1", "C1", "C1", "G1"],
            "level": ["street", "community", "grid", "grid", "microgrid"],
            "lon": [120.1, 120.1, 120.1, 120.11, 120.1],
            "lat": [30.2, 30.2, 30.2, 30.21, 30.2],
            "area_km2": [1.0, 1.0, 0.25, 0.25, 0.05],
        }
    )
    cases = pd.DataFrame(
        {
            "case_id": ["c1", "c2", "c3", "c4"],
            "reported_at": ["2024-01-05 10:00", "2024-02-01 21:30", "2024-03-03 08:15", "2024-06-01 12:00"],
            "grid_id": ["G1", "G2", "M1", "G1"],
            "category": ["neighbour_noise", "family", "neighbour_noise", "consumer"],
            "severity": [1, 2, 3, None],
            "source": ["hotline", "police", "grid_worker", None],
            "party_key": ["p-alpha", "p-beta", "p-alpha", None],
            "resolved_at": ["2024-01-06", None, "2024-03-10", None],
            "escalated_at": [None, None, "2024-03-05", None],
            "outcome": ["resolved", "open", "escalated", "open"],
            "lon": [120.1, 120.11, 120.1, 120.1],
            "lat": [30.2, 30.21, 30.2, 30.2],
        }
    )
    history = pd.DataFrame(
        {
            "grid_id": ["G1", "G2", "G1"],
            "valid_from": ["2024-01-01", "2024-01-01", "2024-07-01"],
            "population": [1200, 800, 1250],
            "rented_share": [0.3, 0.1, 0.32],
        }
    )
    adjacency = pd.DataFrame({"grid_id": ["G1", "G2"], "neighbour_id": ["G2", "G1"]})
    return Dataset(cases=cases, grids=grids, grid_history=history, adjacency=adjacency, as_of="2024-12-31")


def make_visits() -> pd.DataFrame:
    """A small valid visits table for :func:`make_dataset`'s units (kept apart from it:
    the dataset's other tests count its tables)."""
    return pd.DataFrame(
        {
            "visit_id": ["v1", "v2", "v3", "v4", "v5"],
            "grid_id": ["G1", "S1", "M1", "C1", "G2"],  # a unit at any level
            "visited_at": ["2024-01-10 09:00", "2024-02-02 14:00", "2024-03-04", "2024-05-01", "2024-06-02"],
            "kind": ["screening", "mediation", "follow_up", "publicity", "screening"],
            "team": ["team-east", "team-west", "team-east", None, "team-west"],
            "outcome": ["issue_found", "resolved_on_site", "no_issue", "not_reached", None],
            "plan_id": ["P1", "P1", None, None, "P2"],
            "assignment": ["rank", "explore", "ad_hoc", None, "rank"],
        }
    )


def make_plans() -> pd.DataFrame:
    """The plans that :func:`make_visits`'s plan ids name: P1 (a rank row, an explore row
    and its control) in the week of 2024-01-08, P2 in the week of 2024-05-27."""
    return pd.DataFrame(
        {
            "plan_id": ["P1", "P1", "P1", "P2"],
            "grid_id": ["G1", "S1", "G2", "G2"],
            "week": ["2024-01-08", "2024-01-08", "2024-01-08", "2024-05-27"],
            "group": ["C1", "C1", "C1", "C1"],
            "priority": [1, 2, 3, 1],
            "assignment": ["rank", "explore", "control", "rank"],
            "explore_probability": [None, 0.5, 0.5, None],
            "reason": ["many recent cases", None, None, "a backlog"],
        }
    )


@pytest.fixture
def dataset() -> Dataset:
    return make_dataset()


@pytest.fixture(scope="session")
def small_district():
    from riskmodel.datasets import simulate_district

    return simulate_district("small", seed=0)


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(
            f"the real incident data is not at {REAL_DATA} (it lives beside the repository in ../shared/data/real)"
        )
    return REAL_DATA


def simulated_disputes(district) -> pd.DataFrame:
    """The simulated disputes as they were before duplicate reports: each dispute's
    first report, without the columns the duplicates brought, with a fresh index."""
    cases = district.cases
    first = cases[cases["case_id"] == cases["dispute_id"]]
    return first.drop(columns=["dispute_id", "description"]).reset_index(drop=True)
