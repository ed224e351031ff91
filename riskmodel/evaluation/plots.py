"""Figures of a backtest: hit-rate curve, calibration, PIT histogram, risk map and a metric by fold.

Every function returns a :class:`matplotlib.figure.Figure` built without
pyplot's global state, so figures can be drawn headless and in threads;
:func:`save_figures` writes the ones that apply to the target as PNG files.
The oracle (on simulated data) is drawn dashed black.

Examples
--------
>>> from riskmodel.datasets import simulate_district
>>> from riskmodel.evaluation import backtest, plots
>>> from riskmodel.models import HistoricalRateBaseline, LastPeriodBaseline
>>> district = simulate_district("tiny", seed=0)
>>> result = backtest(district, [HistoricalRateBaseline(), LastPeriodBaseline()],
...                   cutoffs=["2023-10-02", "2023-10-30"], horizon=28, track=False, progress=False)
>>> figure = plots.hit_rate_curve(result)
>>> sorted(line.get_label() for line in figure.axes[0].lines)
['HistoricalRateBaseline', 'LastPeriodBaseline', 'oracle', 'random']
>>> len(plots.calibration_curve(result).axes[0].lines), len(plots.metrics_by_fold(result).axes[0].lines)
(4, 3)
>>> len(plots.pit_histogram(result).axes[0].patches)  # a stairs per model and the oracle
3
>>> [len(axes.collections) for axes in plots.risk_map(result, district).axes[:2]]  # the forecast; the cases
[1, 1]
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..contract import first_reports
from ..models.distribution import NegativeBinomial
from ..models.tiers import probability_saturated as saturated
from . import metrics
from .report_words import metric_label

__all__ = [
    "calibration_curve",
    "funnel_plot",
    "hit_rate_curve",
    "metrics_by_fold",
    "pit_histogram",
    "png_bytes",
    "probability_saturated",
    "risk_map",
    "risk_map_frame",
    "save_figures",
]


def _axes(xlabel: str, ylabel: str, title: str):
    figure = Figure(figsize=(10, 4.5), layout="constrained")
    axes = figure.add_subplot()
    axes.set(xlabel=xlabel, ylabel=ylabel, title=title)
    return figure, axes


def _legend(axes) -> None:
    """The legend outside the axes, on the right: it never covers the data."""
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0, frameon=False)


def _style(name: str) -> dict:
    return {"label": name} | ({"linestyle": "--", "color": "black"} if name == "oracle" else {})


def _grid_only(result, what: str) -> None:
    if not result.kind.counts:
        raise ValueError(f"{what} needs a grid-target backtest; this result's target is {result.target!r}")


def hit_rate_curve(result, *, shares=None) -> Figure:
    """Hit rate against the share of units chosen, per model, averaged over folds.

    Each fold's value is :func:`~riskmodel.evaluation.metrics.hit_rate` (ties
    at the boundary shared); the mean over folds skips folds without a case,
    as the leaderboard does, so the curve at 0.05 is ``hit_rate_at_5pct``.
    The dotted line is a random choice of units. Grid target only.

    Parameters
    ----------
    result : BacktestResult
    shares : array of floats in [0, 1], optional
        The x values (default 0, 0.01, ..., 0.30); the hit rate at 0 is 0.
    """
    _grid_only(result, "the hit-rate curve")
    shares = np.arange(31) / 100 if shares is None else np.asarray(shares, dtype=float)
    if ((shares < 0) | (shares > 1)).any():
        raise ValueError(f"shares must lie in [0, 1], got {shares[(shares < 0) | (shares > 1)][:5].tolist()}")
    folds: dict[str, list[np.ndarray]] = {}
    for (name, _), fold in result.predictions.groupby(["model", "fold"], sort=False)[["y_count", "probability"]]:
        folds.setdefault(name, []).append(
            _hit_rates(fold["y_count"].to_numpy(), fold["probability"].to_numpy(), shares)
        )
    means = {name: pd.DataFrame(rows).mean().to_numpy() for name, rows in folds.items()}  # folds without a case skipped
    figure, axes = _axes("share of units chosen", "hit rate (share of cases caught)", "Hit rate (mean over folds)")
    for name in result.leaderboard.index:
        axes.plot(shares, means[name], **_style(name))
    axes.plot([0, shares.max()], [0, shares.max()], ":", color="grey", label="random")
    _legend(axes)
    return figure


def _hit_rates(y: np.ndarray, score: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """:func:`~riskmodel.evaluation.metrics.hit_rate` of one fold at every share (0 at a
    share of 0), ranking the units once (:func:`~riskmodel.evaluation.metrics.selection`)."""
    y = np.asarray(y, dtype=float)
    total = y.sum()
    if total <= 0:
        return np.where(shares > 0, np.nan, 0.0)
    return metrics.selection(score, shares) @ y / total


def calibration_curve(result, *, bins: int = 10) -> Figure:
    """Observed frequency against mean predicted probability per bin, per model (all folds pooled).

    The bins hold equal numbers of rows (quantiles of the probability, ties
    in one bin), as in :func:`~riskmodel.evaluation.metrics.expected_calibration_error`;
    the dotted diagonal is perfect calibration. Grid or escalation target.
    """
    if not (isinstance(bins, int) and bins >= 1):
        raise ValueError(f"bins must be a whole number >= 1, got {bins!r}")
    figure, axes = _axes("mean predicted probability", "observed frequency", f"Calibration ({bins} quantile bins)")
    top = 0.0
    for name in result.leaderboard.index:
        rows = result.predictions[result.predictions["model"] == name]
        p = rows["probability"].to_numpy(dtype=float)
        rank = pd.Series(p).rank(method="min").to_numpy() - 1
        b = np.minimum((rank * bins // len(p)).astype(int), bins - 1)
        points = pd.DataFrame({"p": p, "y": rows["y"].to_numpy() > 0}).groupby(b).mean()
        axes.plot(points["p"], points["y"], marker="o", **_style(name))
        top = max(top, points["p"].max(), points["y"].max())
    axes.plot([0, top], [0, top], ":", color="grey", label="perfect")
    _legend(axes)
    return figure


def pit_histogram(result, *, bins: int = 10) -> Figure:
    """The nonrandomized PIT histogram of every model's count distribution, all folds pooled.

    Each unit's count is scored against its model's negative binomial forecast (the
    fold's ``expected`` and ``dispersion``) by
    :func:`~riskmodel.evaluation.metrics.pit_histogram` (Czado, Gneiting and Held 2009),
    drawn as a density: flat at 1 (dotted) for a calibrated forecast, U-shaped when the
    distribution is too narrow, hump-shaped when it is too wide. Grid target only.
    """
    _grid_only(result, "the PIT histogram")
    if not (isinstance(bins, int) and bins >= 1):
        raise ValueError(f"bins must be a whole number >= 1, got {bins!r}")
    edges = np.linspace(0, 1, bins + 1)
    figure, axes = _axes("PIT", "density", f"PIT histogram ({bins} bins, all folds)")
    for name in result.leaderboard.index:
        rows = result.predictions[result.predictions["model"] == name]
        mass = np.zeros(bins)
        for dispersion, part in rows.groupby("dispersion"):
            forecast = NegativeBinomial(part["expected"].to_numpy(), float(dispersion))
            mass += metrics.pit_histogram(*forecast.pit(part["y_count"].to_numpy()), bins=bins) * len(part)
        style = _style(name)
        axes.stairs(mass / len(rows) * bins, edges, linewidth=1.5, **style)
    axes.axhline(1.0, linestyle=":", color="grey", label="calibrated")
    _legend(axes)
    return figure


def _positions(dataset, level: str) -> pd.DataFrame:
    """lon, lat of the units at ``level`` that have both, indexed by ``grid_id``."""
    grids = dataset.grids
    if not {"lon", "lat"} <= set(grids.columns):
        return pd.DataFrame(columns=["lon", "lat"], dtype=float)
    return grids.loc[grids["level"] == level].set_index("grid_id")[["lon", "lat"]].astype(float).dropna()


def probability_saturated(probability, *, base_rate: float | None = None) -> bool:
    """Whether a probability of at least one case says little: by the probabilities
    (:func:`riskmodel.models.probability_saturated`), or because the share of units with
    a case in a period (``base_rate``, e.g. of a backtest's labels) is 0.8 or more. Then
    the expected count ranks and colours the units instead.

    Examples
    --------
    >>> from riskmodel.evaluation.plots import probability_saturated
    >>> probability_saturated([0.2, 0.05, 0.6]), probability_saturated([0.2, 0.05, 0.6], base_rate=0.87)
    (False, True)
    """
    return saturated(probability) or (base_rate is not None and base_rate >= 0.8)


def _forecast_rows(result, model: str, fold: int, forecast) -> tuple[pd.DataFrame, pd.Timestamp, bool]:
    """probability and expected_count by unit of a fold's cutoff, or of the final forecast."""
    if forecast is not None:
        rows = forecast.set_index("grid_id")[["probability", "expected_count"]]
        return rows, pd.Timestamp(forecast["as_of"].iloc[0]), True
    if model not in result.leaderboard.index:
        raise ValueError(f"unknown model {model!r}; the result has {list(result.leaderboard.index)}")
    cutoffs = result.folds.drop_duplicates("fold").sort_values("fold")["cutoff"]
    if not -len(cutoffs) <= fold < len(cutoffs):
        raise ValueError(f"fold {fold} is out of range: the result has {len(cutoffs)} folds")
    cutoff = cutoffs.iloc[fold]
    rows = result.predictions[
        (result.predictions["model"] == model) & (result.predictions.index.get_level_values("cutoff") == cutoff)
    ]
    rows = rows.set_axis(rows.index.get_level_values(0)).rename(columns={"expected": "expected_count"})
    return rows[["probability", "expected_count"]], cutoff, False


def risk_map_frame(result, dataset, *, model=None, fold: int = -1, forecast=None, aggregate: bool = True):
    """The units a risk map draws: ``lon``, ``lat``, ``probability``, ``expected_count``
    and ``cases`` (reported in the period shown), indexed by ``grid_id``.

    The forecast is the final model's (``forecast``, a :func:`riskmodel.predict`
    answer: its cases are those of the horizon before ``as_of``) or a fold's (its
    cases those of the horizon after the cutoff). A micro-grid level is drawn at the
    level above (:func:`~riskmodel.evaluation.disclosure.map_level`; ``aggregate=False``
    keeps it): expected counts add up, probabilities combine as ``1 - prod(1 - p)``.
    ``frame.attrs`` holds ``model``, ``level``, ``start``, ``end`` (the cases' period) and ``final``.
    """
    from .disclosure import map_level

    _grid_only(result, "the risk map")
    model = (
        (forecast["model"].iloc[0] if forecast is not None and "model" in forecast else result.best)
        if model is None
        else model
    )
    rows, at, final = _forecast_rows(result, model, fold, forecast)
    level = result.config.get("level", "grid")
    drawn = map_level(dataset, level, aggregate=aggregate)
    owner = dataset.ancestors(drawn).reindex(rows.index)
    rows = (
        rows.assign(miss=1 - rows["probability"])
        .groupby(owner.to_numpy())
        .agg(miss=("miss", "prod"), expected_count=("expected_count", "sum"))
    )
    rows = rows.assign(probability=1 - rows.pop("miss")).rename_axis("grid_id")
    units = rows.join(_positions(dataset, drawn), how="inner")
    if units.empty:
        raise ValueError(f"the {drawn} units have no coordinates: a risk map needs columns lon, lat in dataset.grids")
    start, end = (at - result.horizon, at) if final else (at, at + result.horizon)
    disputes = first_reports(dataset.cases)  # a dispute reported on three platforms is one
    reported = pd.to_datetime(disputes["reported_at"])
    cases = disputes.loc[(reported >= start) & (reported < end), "grid_id"]
    counts = cases.map(dataset.ancestors(drawn)).value_counts()
    units["cases"] = counts.reindex(units.index, fill_value=0).astype(int)
    if "area_km2" in dataset.grids.columns:
        units["area_km2"] = dataset.grids.set_index("grid_id")["area_km2"].reindex(units.index)
    units.attrs = {"model": str(model), "level": drawn, "start": start, "end": end, "final": final}
    return units


def _draw_units(axes, units: pd.DataFrame, values, **style):
    """The units as squares of their area (or square markers), coloured by ``values``."""
    if "area_km2" in units and units["area_km2"].notna().all():  # 1 degree of latitude ~ 111.32 km
        half = units["area_km2"].to_numpy() ** 0.5 / 2 / 111.32
        corners = (
            np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]])[None]
            * np.stack([half / np.cos(np.radians(units["lat"].to_numpy())), half], axis=1)[:, None]
        )
        shapes = PolyCollection(
            corners + units[["lon", "lat"]].to_numpy()[:, None], edgecolors="grey", linewidths=0.3, **style
        )
        if values is not None:
            shapes.set_array(np.asarray(values, dtype=float))
        axes.add_collection(shapes)
        axes.autoscale_view()
        return shapes
    size = float(np.clip(30000 / len(units), 6, 400))  # dense maps: bigger marks, no edges to grey them
    edges = {"edgecolors": "grey", "linewidths": 0.2} if len(units) <= 300 else {"edgecolors": "none"}
    return axes.scatter(units["lon"], units["lat"], c=values, marker="s", s=size, **edges, **style)


def _panel(figure, axes, units: pd.DataFrame, values: pd.Series, *, cmap: str, label: str) -> None:
    """The units coloured from 0 to the 95th percentile of ``values`` (the few highest
    clipped, so that the many low ones still differ), with a colour bar."""
    shapes = _draw_units(axes, units, values, cmap=cmap)
    top, most = float(np.nanmax(values, initial=0)), float(np.nan_to_num(np.nanquantile(values, 0.95)))
    clipped = 0 < most < top
    shapes.set_clim(0, most if clipped else max(top, 1e-9))
    figure.colorbar(shapes, ax=axes, label=label, shrink=0.8, extend="max" if clipped else "neither")


def risk_map(
    result, dataset, *, model=None, fold: int = -1, forecast=None, aggregate: bool = True, k: int = 3
) -> Figure:
    """Two panels over the units' lon/lat: the forecast, and the cases of its period.

    The left panel colours :func:`risk_map_frame`'s units by the probability of at
    least one case, or by the expected count when that probability says little
    (:func:`probability_saturated`). The right one colours them by their cases;
    at the micro-grid level counts below ``k`` are greyed as hidden (disclosure
    control), and no case is drawn at its own place. Axes are labelled in degrees.
    Grid target only.

    Parameters
    ----------
    result : BacktestResult
    dataset : Dataset
        The backtest's data; ``grids`` must give the units ``lon`` and ``lat``.
    model : str, optional
        Default: the forecast's model, else ``result.best``.
    fold : int
        Position of the fold (0 the first, -1 the last) when there is no ``forecast``.
    forecast : DataFrame, optional
        The final model's forecast (a :func:`riskmodel.predict` answer).
    aggregate : bool
        Draw a micro-grid level at the level above.
    k : int
        The smallest count shown at the micro-grid level.
    """
    units = risk_map_frame(result, dataset, model=model, fold=fold, forecast=forecast, aggregate=aggregate)
    info = units.attrs
    by_count = probability_saturated(units["probability"], base_rate=result.predictions["y"].mean())
    value, label = (
        ("expected_count", "expected cases") if by_count else ("probability", "probability of at least one case")
    )
    figure = Figure(figsize=(12, 5.5), layout="constrained")
    risk, seen = figure.subplots(1, 2, sharex=True, sharey=True)
    last = info["end"] - pd.Timedelta(days=1)
    what = "forecast" if info["final"] else "forecast at the cutoff"
    risk.set(title=f"{info['model']} {what}: {label}", xlabel="longitude (°)", ylabel="latitude (°)")
    _panel(figure, risk, units, units[value], cmap="YlOrRd", label=label)
    hidden = (units["cases"] > 0) & (units["cases"] < k) & (info["level"] == dataset.levels[-1])
    shown = units["cases"].where(~hidden, np.nan).astype(float)
    seen.set(title=f"cases reported {info['start']:%d %b %Y} to {last:%d %b %Y}", xlabel="longitude (°)")
    _panel(figure, seen, units, shown, cmap="Blues", label="cases")
    if hidden.any():
        _draw_units(seen, units[hidden], None, facecolor="#e4e4e4", zorder=0.5)  # under the shown counts
        seen.legend(
            handles=[Patch(facecolor="#e4e4e4", label=f"1 to {k - 1} cases (hidden)")],
            loc="upper left",
            bbox_to_anchor=(0, -0.12),
        )
    for axes in (risk, seen):
        axes.set_aspect(1 / np.cos(np.radians(units["lat"].mean())))
    figure.suptitle(f"{len(units)} {info['level']} units")
    return figure


def metrics_by_fold(result, metric: str = "hit_rate_at_5pct") -> Figure:
    """A metric of every fold against the fold's test cutoff, per model.

    ``metric`` is a column of ``result.folds`` (for the escalation target
    e.g. ``"roc_auc"``); an unknown one raises a ValueError listing them.
    """
    known = [c for c in result.folds.columns if c not in ("model", "fold", "cutoff", "train_rows")]
    if metric not in known:
        raise ValueError(f"unknown metric {metric!r}; the folds have: {', '.join(known)}")
    label = metric_label(metric)
    figure, axes = _axes("test cutoff", label, f"{label} by fold")
    for name in result.leaderboard.index:
        rows = result.folds[result.folds["model"] == name].sort_values("cutoff")
        axes.plot(rows["cutoff"], rows[metric], marker="o", **_style(name))
    axes.tick_params(axis="x", labelrotation=30)
    _legend(axes)
    return figure


def png_bytes(figure: Figure, *, dpi: int = 90) -> bytes:
    """``figure`` as PNG bytes, as the HTML pages show it inline.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from riskmodel.evaluation.plots import png_bytes
    >>> png_bytes(Figure(figsize=(1, 1)))[:4]
    b'\\x89PNG'
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_figures(result, dataset, folder) -> list[Path]:
    """Draw the figures that apply and save them as PNG files in ``folder`` (created if needed).

    Grid target: ``hit_rate_curve.png``, ``calibration_curve.png``,
    ``pit_histogram.png``, ``risk_map.png`` (when the units have coordinates) and
    ``metrics_by_fold.png`` (hit rate at 5%); escalation target: the
    calibration curve and ``metrics_by_fold.png`` (ROC AUC); waves target:
    ``metrics_by_fold.png`` (detection rate).

    Returns
    -------
    list of Path
        The files written, in that order.
    """
    kind = result.kind
    draw = {
        "hit_rate_curve": (lambda: hit_rate_curve(result)) if kind.counts else None,
        "calibration_curve": (lambda: calibration_curve(result)) if kind.probabilities else None,
        "pit_histogram": (lambda: pit_histogram(result)) if "dispersion" in result.predictions else None,
        "risk_map": (lambda: risk_map(result, dataset))
        if kind.counts and dataset is not None and not _positions(dataset, result.config.get("level", "grid")).empty
        else None,
        "metrics_by_fold": lambda: metrics_by_fold(result, kind.headline),
    }
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, figure in draw.items():
        if figure is not None:
            paths.append(folder / f"{name}.png")
            figure().savefig(paths[-1], dpi=100)
    return paths


def funnel_plot(assessment: pd.DataFrame, ax=None) -> Figure:
    """Observed/expected ratio of every unit against its expected count, with the funnel's limits.

    ``assessment`` is an answer of :func:`~riskmodel.evaluation.assess`. The 95% and
    99.8% exact Poisson limits (:func:`~riskmodel.evaluation.assessment.control_limits`)
    are drawn as curves over the expected counts (steps: counts are whole), dashed and
    solid; the units outside the 95% limits are labelled with their ``grid_id``. A
    unit with no expected case has no ratio and is left out. Draws into ``ax`` when
    given (its figure is returned).

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.evaluation import plots
    >>> table = pd.DataFrame({"grid_id": ["C1", "C2"], "level": "community", "observed": [30, 9],
    ...                       "expected": [12.0, 10.0], "flag": ["above_998", "within"]})
    >>> table["ratio"] = table["observed"] / table["expected"]
    >>> figure = plots.funnel_plot(table)
    >>> [text.get_text() for text in figure.axes[0].texts]
    ['C1']
    """
    from .assessment import control_limits

    missing = [c for c in ("grid_id", "expected", "ratio", "flag") if c not in assessment.columns]
    if missing:
        raise ValueError(f"funnel_plot needs an answer of assess(); the table lacks {missing}")
    level = assessment["level"].iloc[0] if "level" in assessment and len(assessment) else "unit"
    if ax is None:
        figure, ax = _axes("expected count", "observed / expected", f"Funnel plot ({level})")
    else:
        figure = ax.figure
        ax.set(xlabel="expected count", ylabel="observed / expected", title=f"Funnel plot ({level})")
    shown = assessment[assessment["expected"] > 0]
    top = float(shown["expected"].max()) if len(shown) else 1.0
    grid = np.linspace(min(0.5, top), top * 1.05, 400)
    for coverage, style in ((0.95, "--"), (0.998, "-")):
        lower, upper = control_limits(grid, coverage)
        ax.plot(grid, upper, style, color="grey", label=f"{coverage:.1%} limits".replace(".0%", "%"))
        ax.plot(grid, lower, style, color="grey")
    ax.axhline(1.0, color="black", linewidth=0.8)
    outside = shown["flag"] != "within"
    ax.scatter(shown["expected"], shown["ratio"], c=np.where(outside, "tab:red", "tab:blue"), s=18, zorder=3)
    for _, row in shown[outside].iterrows():
        ax.annotate(str(row["grid_id"]), (row["expected"], row["ratio"]), xytext=(3, 3), textcoords="offset points")
    ax.legend()
    return figure
