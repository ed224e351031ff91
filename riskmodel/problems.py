"""Problems found in data: collected, described, and split into kept and rejected rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .contract import Dataset

__all__ = ["SECRET_COLUMNS", "ValidationError", "DataReport", "ProblemLog", "shown_value"]

#: Columns whose values never appear in a message: party keys and the visits' teams.
SECRET_COLUMNS = frozenset({"party_key", "team"})
_EXAMPLES = 5
_WIDTH = 80  # the most characters of one example value in a message


class ValidationError(ValueError):
    """Data that breaks the contract; the message lists every problem found.

    Attributes
    ----------
    problems : DataFrame
        One row per problem: ``table``, ``column``, ``rule``, ``count``,
        ``message`` and ``examples`` (up to five offending rows).
    """

    def __init__(self, problems: pd.DataFrame):
        self.problems = problems
        super().__init__(describe(problems))


@dataclass(frozen=True, repr=False)
class DataReport:
    """The outcome of checking or converting data: what was kept and what was not.

    Attributes
    ----------
    dataset : Dataset
        The valid rows, with the contract's types.
    rejected : DataFrame
        Every rejected row: ``table``, ``row`` (its index label in the input),
        ``position`` (its position in the input table, unambiguous where labels
        repeat), ``reason``, then the row's own columns as they were given (with
        raw ``party_key`` values: pseudonymise before sharing it).
    problems : DataFrame
        One row per problem: ``table``, ``column``, ``rule``, ``count``,
        ``message``, ``examples``.
    counts : DataFrame
        Per table: ``input``, ``valid`` and ``rejected`` rows; ``valid + rejected
        == input`` always.
    """

    dataset: Dataset
    rejected: pd.DataFrame
    problems: pd.DataFrame
    counts: pd.DataFrame

    def __str__(self) -> str:
        return f"{self.counts.to_string()}\n{describe(self.problems)}"

    def __repr__(self) -> str:  # the rejected rows may hold party keys: never shown here
        counts = ", ".join(f"{t}: {r.valid} valid, {r.rejected} rejected" for t, r in self.counts.iterrows())
        return f"DataReport({counts}; {len(self.problems)} problem(s))"


class ProblemLog:
    """Problems found in some tables, as (table, column, rule, message, row positions).

    ``keys`` names, per table, the columns shown in every example row.
    """

    def __init__(self, tables: dict[str, pd.DataFrame], keys: dict[str, list[str]] | None = None):
        self.tables = tables
        self.keys = keys or {}
        self.problems: list[tuple[str, str, str, str, np.ndarray]] = []
        self.bad = {name: np.zeros(len(frame), dtype=bool) for name, frame in tables.items()}

    def add(self, table: str, column: str, rule: str, message: str, mask) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            self.problems.append((table, column, rule, message, np.flatnonzero(mask)))
            self.bad[table] |= mask

    def frame(self) -> pd.DataFrame:
        rows = [
            {
                "table": table,
                "column": column,
                "rule": rule,
                "count": len(positions),
                "message": message,
                "examples": self._examples(table, column, positions),
            }
            for table, column, rule, message, positions in self.problems
        ]
        return pd.DataFrame(rows, columns=["table", "column", "rule", "count", "message", "examples"])

    def _examples(self, table: str, column: str, positions: np.ndarray) -> str:
        frame = self.tables[table]
        columns = [c for c in dict.fromkeys(self.keys.get(table, []) + column.split(", ")) if c in frame.columns]
        shown = []
        for pos in positions[:_EXAMPLES]:
            values = ", ".join(
                f"{c}=<hidden>" if c in SECRET_COLUMNS else f"{c}={shown_value(frame[c].iloc[pos])}" for c in columns
            )
            label = frame.index[pos]
            row = f"row {pos}" if label == pos else f"row {shown_value(label)} (position {pos})"
            shown.append(f"{row} ({values})")
        return "; ".join(shown)

    def rejected(self) -> pd.DataFrame:
        parts = []
        for name, frame in self.tables.items():
            positions = np.flatnonzero(self.bad[name])
            if not len(positions):
                continue
            reasons: dict[int | np.integer, list[str]] = {}
            for table, column, rule, _, rows in self.problems:
                if table == name:
                    for pos in rows:
                        reasons.setdefault(pos, []).append(f"{column}: {rule}")
            part = frame.iloc[positions].reset_index(drop=True)
            head = pd.DataFrame(
                {
                    "table": name,
                    "row": frame.index[positions],
                    "position": positions,
                    "reason": ["; ".join(reasons[pos]) for pos in positions],
                }
            )
            # A column of the input named like a header column keeps its values as <name>_input.
            part.columns = [f"{c}_input" if c in head.columns else c for c in part.columns]
            parts.append(pd.concat([head, part], axis=1))
        if not parts:
            return pd.DataFrame(columns=["table", "row", "position", "reason"])
        return pd.concat(parts, ignore_index=True)


def shown_value(value, limit: int = _WIDTH) -> str:
    """``repr(value)``, cut to ``limit`` characters: a message stays readable whatever the data holds."""
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def describe(problems: pd.DataFrame) -> str:
    if not len(problems):
        return "no problems"
    lines = [f"{len(problems)} problem(s) with the data:"]
    for p in problems.itertuples():
        count = f"{p.count} row(s): " if p.count else ""
        example = f" e.g. {p.examples}" if p.examples else ""
        lines.append(f"- {p.table}.{p.column} [{p.rule}] {count}{p.message}.{example}")
    return "\n".join(lines)
