"""What the feature builders share: their arguments (cutoffs, horizon, target,
vocabularies) and the scikit-learn protocol."""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..contract import Dataset, first_reports
from ..validation import validate

__all__ = [
    "COUNTS",
    "Target",
    "check_count",
    "counted_cases",
    "horizon_words",
    "logged_horizon",
    "parse_cutoffs",
    "parse_horizon",
    "parse_target",
    "training_cutoffs",
    "vocabulary",
]


class Builder(TransformerMixin, BaseEstimator):
    """A feature builder: ``fit`` learns the vocabularies of the data (``_learn``) so
    that ``transform`` gives the same columns, :meth:`catalog`, on any data.

    Subclasses define ``level``, ``_learn(data, categories=None, attributes=None)`` (the
    vocabularies, from the data unless given), ``catalog`` and ``build``, whose
    result's ``X`` is the features, and ``optional_inputs``: the optional case
    columns their features read (a model trained on data with one of them needs it
    in the data it scores; ``severity`` is not among them, since a missing severity
    is 1 by the contract).
    """

    optional_inputs: tuple[str, ...] = ()
    # A builder saved before ``count`` existed counted every report.
    count = "reports"

    def fit(self, dataset: Dataset, y=None):
        """Learn the vocabularies of ``dataset``; ``y`` is ignored.

        Returns
        -------
        self
        """
        return self.fit_learned(validate(dataset).dataset)

    def fit_learned(self, data: Dataset, *, categories: pd.Series | None = None, attributes: list[str] | None = None):
        """Fit on validated ``data``, with vocabularies computed elsewhere where given.

        `fit` calls it with the vocabularies read from the data; the Dask builder
        (`riskmodel.scaleout.fit_builder`) passes the ones it computed over every partition
        together with a Dataset of the data's shape.

        Parameters
        ----------
        data : Dataset
            Validated data, or a Dataset of its shape when both vocabularies are given.
        categories : pandas.Series, optional
            The case categories seen in the data (repeats are fine); by default
            ``data.cases["category"]``.
        attributes : list of str, optional
            The attribute columns with a value for some unit of the level; by default the
            ones of ``data``.

        Returns
        -------
        self
        """
        self._check_params(data)
        self._learn(data, categories=categories, attributes=attributes)
        self.feature_names_out_ = np.array(self.catalog()["name"], dtype=object)
        return self

    def transform(self, dataset: Dataset) -> pd.DataFrame:
        """The features ``X`` of :meth:`build`, with the columns learned in ``fit``."""
        return self.build(dataset).X

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """The names of the columns of :meth:`transform`."""
        check_is_fitted(self)
        return self.feature_names_out_

    def _check_params(self, data: Dataset) -> None:
        check_count(self.count)
        if self.level not in data.levels:
            raise ValueError(f"unknown level {self.level!r}; the data has levels {data.levels}")


#: What the builders, labels and monitoring count (their ``count`` parameter): ``disputes``
#: (a dispute's first report, :func:`riskmodel.first_reports`) or every report.
COUNTS = ("disputes", "reports")


def counted_cases(cases: pd.DataFrame, count: str) -> pd.DataFrame:
    """The case rows that count: the first report of every dispute for ``count="disputes"``
    (:func:`riskmodel.first_reports`; every report without ``dispute_id``), every report
    for ``count="reports"``.

    Raises
    ------
    ValueError
        When ``count`` is neither.

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.features.base import counted_cases
    >>> cases = pd.DataFrame({"case_id": ["a", "b"], "reported_at": pd.to_datetime(["2024-05-01", "2024-05-02"]),
    ...                       "dispute_id": ["a", "a"]})
    >>> len(counted_cases(cases, "disputes")), len(counted_cases(cases, "reports"))
    (1, 2)
    """
    return first_reports(cases) if check_count(count) == "disputes" else cases


def check_count(count) -> str:
    """``count``, checked: ``disputes`` or ``reports``; a ValueError naming both otherwise."""
    if count not in COUNTS:
        raise ValueError(
            f"count must be 'disputes' (a dispute's first report) or 'reports' (every report), got {count!r}"
        )
    return count


def vocabulary(names, observed: pd.Series, what: str) -> list[str]:
    """``names``, each seen in ``observed``; or, when None, the sorted values seen.

    Raises
    ------
    ValueError
        Naming the unknown names and listing the known ones.
    """
    known = sorted(observed.dropna().unique())
    if names is None:
        return known
    names = [names] if isinstance(names, str) else list(names)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; the data's {what} are {known}")
    return names


@dataclass(frozen=True)
class Target:
    """Which cases a label counts.

    Parameters
    ----------
    categories : tuple of str, optional
        Only these categories (default: all).
    min_severity : int
        Only cases of at least this severity (1-4).
    escalations : bool
        Count escalations (by ``escalated_at``) instead of reported cases.
    """

    categories: tuple[str, ...] | None = None
    min_severity: int = 1
    escalations: bool = False


def parse_target(target) -> Target:
    """A :class:`Target` from None, a Target, a mapping of its fields, or a category name."""
    if target is None:
        return Target()
    if isinstance(target, Target):
        result = target
    elif isinstance(target, str):
        result = Target(categories=(target,))
    elif isinstance(target, Mapping):
        unknown = sorted(set(target) - {"categories", "min_severity", "escalations"})
        if unknown:
            raise ValueError(f"unknown target field(s) {unknown}; use categories, min_severity, escalations")
        result = Target(**target)
    else:
        raise TypeError(f"target must be None, a Target, a dict or a category name, got {target!r}")
    categories = result.categories
    if categories is not None:
        categories = (categories,) if isinstance(categories, str) else tuple(categories)
    if result.min_severity not in (1, 2, 3, 4):
        raise ValueError(f"target min_severity must be 1, 2, 3 or 4, got {result.min_severity!r}")
    return Target(categories=categories, min_severity=result.min_severity, escalations=bool(result.escalations))


def parse_horizon(horizon) -> pd.Timedelta | pd.DateOffset:
    """Days (a number), a Timedelta, a string such as ``"28D"``, or a pandas offset."""
    if isinstance(horizon, pd.DateOffset):
        probe = pd.Timestamp("2000-01-01")
        if probe + horizon <= probe:
            raise ValueError(f"horizon must be positive, got {horizon!r}")
        return horizon
    if isinstance(horizon, bool):
        raise TypeError(f"horizon must be a number of days or a pandas offset, got {horizon!r}")
    try:
        delta = pd.Timedelta(days=horizon) if isinstance(horizon, (int, float)) else pd.Timedelta(horizon)
    except (ValueError, TypeError) as error:
        raise ValueError(f"horizon must be a number of days or a pandas offset, got {horizon!r}") from error
    if delta <= pd.Timedelta(0):
        raise ValueError(f"horizon must be positive, got {horizon!r}")
    return delta


#: The units of an offset in words, from the largest.
_OFFSET_UNITS = ("years", "months", "weeks", "days", "hours", "minutes")


def logged_horizon(text) -> pd.Timedelta | pd.DateOffset | None:
    """A horizon read back from its text as a backtest logs it (``"28"``, ``"28D"``,
    ``"28 days 00:00:00"``, ``"<DateOffset: months=1>"``, ``"{'months': 1}"``); None for
    text that is no horizon (``"None"``).

    Examples
    --------
    >>> from riskmodel.features.base import logged_horizon
    >>> logged_horizon("28"), logged_horizon("<DateOffset: months=1>"), logged_horizon("None")
    (Timedelta('28 days 00:00:00'), <DateOffset: months=1>, None)
    """
    text = str(text).strip()
    offset = re.findall(r"(years|months|weeks|days|hours|minutes)\W*[=:]\s*(-?\d+)", text)
    if offset:
        return pd.DateOffset(**{unit: int(n) for unit, n in offset})
    try:
        delta = pd.Timedelta(days=float(text)) if re.fullmatch(r"\d+(\.\d+)?", text) else pd.Timedelta(text)
    except ValueError:
        return None
    return None if pd.isna(delta) else delta


def horizon_words(horizon) -> str:
    """A horizon in words: days (a number), a Timedelta, a pandas offset, a mapping such as
    ``{"months": 1}``, or a horizon's logged text (see :func:`logged_horizon`); "" for none.

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.features.base import horizon_words
    >>> horizon_words(28), horizon_words("28 days 00:00:00"), horizon_words(pd.DateOffset(months=1))
    ('28 days', '28 days', '1 month')
    >>> horizon_words("<DateOffset: months=1>"), horizon_words("{'months': 3}"), horizon_words({"weeks": 2, "days": 1})
    ('1 month', '3 months', '2 weeks 1 day')
    >>> horizon_words(pd.Timedelta(hours=36)), horizon_words(pd.offsets.MonthBegin()), horizon_words(None)
    ('1.5 days', '1 MS period', '')
    """
    if isinstance(horizon, str):
        horizon = logged_horizon(horizon)
    if horizon is None:
        return ""
    if isinstance(horizon, Mapping):
        horizon = pd.DateOffset(**horizon)
    if isinstance(horizon, pd.offsets.BaseOffset) and horizon.kwds:
        units = sorted(horizon.kwds, key=lambda u: _OFFSET_UNITS.index(u) if u in _OFFSET_UNITS else len(_OFFSET_UNITS))
        return " ".join(_plural(horizon.kwds[unit], unit.removesuffix("s")) for unit in units if horizon.kwds[unit])
    if isinstance(horizon, pd.offsets.BaseOffset):  # an offset such as MonthBegin: n periods of its kind
        return _plural(horizon.n, f"{horizon.freqstr.lstrip('0123456789')} period")
    days = horizon if isinstance(horizon, (int, float)) else pd.Timedelta(horizon) / pd.Timedelta(days=1)
    return _plural(days, "day")


def _plural(n: float, unit: str) -> str:
    return f"{n:g} {unit}{'' if n == 1 else 's'}"


def _time(value) -> pd.Timestamp:
    try:
        return pd.Timestamp(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"cutoff {value!r} is not a time") from error


def parse_cutoffs(cutoffs, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """Sorted unique cutoffs from a list of times or a mapping ``start``/``end``/``freq``.

    Every cutoff must lie in the data's span ``[start, end]``.
    """
    if cutoffs is None:
        raise ValueError("cutoffs are required: a list of times or {'start': ..., 'end': ..., 'freq': ...}")
    if isinstance(cutoffs, Mapping):
        unknown = sorted(set(cutoffs) - {"start", "end", "freq"})
        if unknown or "freq" not in cutoffs:
            raise ValueError(f"cutoffs as a mapping takes start, end and freq; got {sorted(cutoffs)}")
        index = pd.date_range(cutoffs.get("start", start), cutoffs.get("end", end), freq=cutoffs["freq"])
    else:
        if isinstance(cutoffs, (str, datetime.date)):
            cutoffs = [cutoffs]
        index = pd.DatetimeIndex([_time(c) for c in cutoffs])
    if index.tz is not None:
        raise ValueError(f"cutoffs must be naive wall-clock times like the data, got zone {index.tz}")
    if len(index) == 0:
        raise ValueError("no cutoffs: the list or range is empty")
    outside = index[(index < start) | (index > end)]
    if len(outside):
        raise ValueError(f"cutoff(s) {', '.join(str(c) for c in outside[:5])} outside the data's span {start} to {end}")
    return index.unique().sort_values().as_unit("us")


def training_cutoffs(first_case: pd.Timestamp, start, end, freq: str) -> pd.DatetimeIndex:
    """Training cutoffs at ``freq`` from ``start`` (default: 91 days of history after the
    midnight before the first case, so every feature window has data) to ``end``."""
    first = pd.Timestamp(first_case).normalize() + pd.Timedelta(days=91)
    return pd.date_range(pd.Timestamp(start) if start is not None else first, end, freq=freq)
