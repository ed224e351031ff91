"""Grid attributes that drift, events that switch on and off, and the base rates
they drive; the history the data shows is observed with noise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from .presets import CATEGORIES, SimulationConfig

# Share of each category in the district's base rate.
CATEGORY_SHARE = np.array([0.28, 0.18, 0.08, 0.14, 0.05, 0.09, 0.08, 0.10])

# Effect on each category's log rate (rows: CATEGORIES) of the centred drivers
# (columns: rented share, elderly share, building age / 20 years, professional
# property management, new property manager, construction, demolition).
_EFFECTS = np.array(
    [
        [2.0, 0.0, 0.1, -0.2, 0.0, 0.4, 0.0],
        [0.5, 0.0, 0.4, -0.7, 0.9, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 1.5, 0.5],
        [0.0, 2.0, 0.1, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.3, 0.0, 0.0, 0.4, 2.0],
        [0.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.6, 0.0],
        [0.3, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0],
    ]
)
_TYPICAL_POPULATION = 1500.0


@dataclass
class Attributes:
    quarter_starts: pd.DatetimeIndex
    true: dict[str, np.ndarray]  # name -> (G, Q) true values
    observed: pd.DataFrame  # the grid_history table
    base_rate: np.ndarray  # (G, C, Q) expected cases per day, before season and waves
    latent: np.ndarray  # (G,) log-rate factor no attribute reveals


def _episodes(rng, n_grids: int, n_quarters: int, per_year: float, low: int, high: int) -> np.ndarray:
    """A (G, Q) 0/1 indicator of episodes that start at random quarters."""
    flag = np.zeros((n_grids, n_quarters), dtype=np.int8)
    count = rng.poisson(per_year * n_quarters / 4, size=n_grids)
    grid = np.repeat(np.arange(n_grids), count)
    first = rng.integers(0, n_quarters, size=len(grid))
    length = rng.integers(low, high + 1, size=len(grid))
    for offset in range(high):
        on = offset < length
        quarter = first[on] + offset
        inside = quarter < n_quarters
        flag[grid[on][inside], quarter[inside]] = 1
    return flag


def build_attributes(
    config: SimulationConfig, grid_ids: pd.Index, neighbours: sparse.csr_matrix, rng: np.random.Generator
) -> Attributes:
    n = len(grid_ids)
    start = pd.Timestamp(config.start)
    n_quarters = int(np.ceil(config.days / 91.3)) + 1
    quarter_starts = pd.date_range(start, periods=n_quarters, freq=pd.DateOffset(months=3)).as_unit("us")
    t_years = ((quarter_starts - start) / pd.Timedelta(days=365.25)).to_numpy()[None, :]

    construction = _episodes(rng, n, n_quarters, 0.25, 1, 4)
    demolition = _episodes(rng, n, n_quarters, 0.03, 2, 4)
    new_manager = _episodes(rng, n, n_quarters, 0.10, 2, 2)
    managed = np.maximum(rng.random(n)[:, None] < 0.6, np.maximum.accumulate(new_manager, axis=1))
    population = (
        np.exp(rng.normal(np.log(_TYPICAL_POPULATION), 0.5, size=n))[:, None]
        * np.exp(rng.normal(0.01, 0.02, size=n)[:, None] * t_years)
        * np.where(demolition == 1, 0.7, 1.0)
    )
    household_size = rng.uniform(2.3, 3.2, size=n)[:, None]
    rented = np.clip(rng.beta(2, 5, size=n)[:, None] + rng.normal(0, 0.02, size=n)[:, None] * t_years, 0, 1)
    elderly = np.clip(rng.beta(2, 6, size=n)[:, None] + 0.005 * t_years, 0, 1)
    age = rng.uniform(2, 60, size=n)[:, None] + t_years
    true = {
        "population": population,
        "households": population / household_size,
        "rented_share": rented,
        "elderly_share": elderly,
        "building_age": age,
        "property_managed": managed.astype(np.int8),
        "new_property_manager": new_manager,
        "construction": construction,
        "demolition": demolition,
    }

    # A spatially smooth factor: a grid's own draw plus its neighbours' mean.
    raw = rng.normal(size=n)
    smooth = raw + neighbours @ raw
    latent = config.latent_sd * (smooth - smooth.mean()) / (smooth.std() or 1.0)
    drivers = np.stack(
        [rented - 0.28, elderly - 0.25, (age - 30) / 20, managed - 0.6, new_manager, construction, demolition],
        axis=-1,
    )  # (G, Q, K)
    log_rate = (
        np.log(population / _TYPICAL_POPULATION)[:, None, :]
        + np.einsum("gqk,ck->gcq", drivers, _EFFECTS)
        + latent[:, None, None]
        + rng.normal(0, 0.25, size=(n, len(CATEGORIES)))[:, :, None]
    )
    # Scale each category so that its mean rate in the first quarter is its share
    # of cases_per_grid_year.
    target = config.cases_per_grid_year * CATEGORY_SHARE / 365.25
    scale = target / np.exp(log_rate[:, :, 0]).mean(axis=0)
    base_rate = np.exp(log_rate) * scale[None, :, None]

    observed = _observe(true, grid_ids, quarter_starts, config.attribute_noise, rng)
    return Attributes(quarter_starts, true, observed, base_rate, latent)


def _observe(true, grid_ids, quarter_starts, noise, rng) -> pd.DataFrame:
    """One snapshot per grid and quarter, as a survey would report it."""
    n, q = true["population"].shape
    shape = (n, q)
    population = np.round(true["population"] * np.exp(rng.normal(0, noise, shape)))
    columns = {
        "grid_id": np.repeat(grid_ids.to_numpy(), q),
        "valid_from": np.tile(quarter_starts.to_numpy(), n),
        "population": population,
        "households": np.round(true["households"] * np.exp(rng.normal(0, noise, shape))),
        "rented_share": np.clip(true["rented_share"] + rng.normal(0, noise / 2, shape), 0, 1).round(3),
        "elderly_share": np.clip(true["elderly_share"] + rng.normal(0, noise / 2, shape), 0, 1).round(3),
        "building_age": np.round(true["building_age"] + rng.normal(0, 2, shape)).clip(0),
    }
    for name in ("property_managed", "new_property_manager", "construction", "demolition"):
        columns[name] = true[name]
    frame = pd.DataFrame(
        {k: (v.ravel() if isinstance(v, np.ndarray) and v.ndim == 2 else v) for k, v in columns.items()}
    )
    frame["grid_id"] = frame["grid_id"].astype("str")
    return frame
