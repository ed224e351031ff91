"""The ``riskmodel`` command."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from .datasets import PRESETS, simulate_district
from .io import read_dataset, write_dataset
from .summary import summarize
from .validation import ValidationError, validate

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Early warnings of community disputes.")


Preset = Annotated[str, typer.Option(help=f"District size: {', '.join(PRESETS)}.")]
Seed = Annotated[int, typer.Option(help="Random seed; the same seed gives the same district.")]


@app.command()
def demo(
    preset: Preset = "small",
    seed: Seed = 0,
    out: Annotated[Path, typer.Option(help="Parent of the dataset folder to write.")] = Path("data/simulated"),
) -> None:
    """Simulate a district, validate it, write it and summarise it.

    Example: riskmodel demo --preset small --seed 0 --out data/simulated
    """
    started = time.perf_counter()
    district = simulate_district(preset, seed=seed)
    report = validate(district)
    folder = write_dataset(report.dataset, out / preset)
    typer.echo(f"Simulated the {preset!r} district (seed {seed}) in {time.perf_counter() - started:.1f} s; "
               f"validated {int(report.counts['input'].sum())} rows, none rejected; written to {folder}\n")
    _print_summary(report.dataset)


@app.command()
def simulate(
    out: Annotated[Path, typer.Argument(help="Dataset folder to write.")],
    preset: Preset = "small",
    seed: Seed = 0,
    format: Annotated[str, typer.Option(help="parquet or csv.")] = "parquet",
) -> None:
    """Simulate a district and write it as a dataset folder.

    Example: riskmodel simulate data/district --preset district --seed 1
    """
    folder = write_dataset(simulate_district(preset, seed=seed), out, format=format)
    typer.echo(f"written to {folder}")


@app.command("validate")
def validate_command(
    folder: Annotated[Path, typer.Argument(help="Dataset folder to check.")],
    quarantine: Annotated[
        Path | None, typer.Option(help="Write the rejected rows here (CSV) instead of failing.")
    ] = None,
) -> None:
    """Check a dataset folder against the data contract; exit 1 if it breaks it.

    Example: riskmodel validate data/simulated/small --quarantine rejected.csv
    """
    try:
        report = validate(read_dataset(folder), errors="quarantine" if quarantine else "raise")
    except (ValidationError, FileNotFoundError) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    typer.echo(report.counts.to_string())
    if quarantine:
        report.rejected.to_csv(quarantine, index=False)
        typer.echo(f"{len(report.rejected)} rejected row(s) written to {quarantine}")


def _print_summary(dataset) -> None:
    tables = summarize(dataset)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        typer.echo("Units per level\n" + tables["units"].to_string() + "\n")
        by_month = tables["cases_by_month"]
        by_month.columns = [c[:12] for c in by_month.columns]
        typer.echo("Cases per month and category\n" + by_month.to_string() + "\n")
        typer.echo("Escalation\n" + tables["escalation"].to_string(float_format="{:.3f}".format) + "\n")
        typer.echo("Busiest grids\n" + tables["busiest"].to_string())
