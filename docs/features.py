"""Write docs/features.md from riskmodel.features.describe(): `.venv/bin/python docs/features.py`."""

from __future__ import annotations

from pathlib import Path

from riskmodel.features import describe

PATH = Path(__file__).with_suffix(".md")


def render() -> str:
    parts = ["# Features", "",
             "Generated from `riskmodel.features.describe()` by `docs/features.py` (a test keeps them equal). "
             "Per-category and attribute names follow the data's own vocabulary; shown here for the simulated "
             "district. Windows are in days.", ""]
    for kind, title in (("grid", "Grid panel (`build_grid_panel`)"), ("case", "Case features (`build_case_features`)")):
        table = describe(kind)
        parts += [f"## {title}", "", "| name | family | window | description |", "| --- | --- | --- | --- |"]
        parts += [f"| `{r.name}` | {r.family} | {'' if r.window != r.window or r.window is None else int(r.window)} "
                  f"| {r.description} |" for r in table.itertuples()]
        parts.append("")
    return "\n".join(parts)


if __name__ == "__main__":
    PATH.write_text(render())
    print(f"written to {PATH}")
