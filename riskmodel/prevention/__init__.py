"""The prevention loop: plan visits from a forecast, rank units by what a visit can
prevent, and the policies that simulate the loop on :func:`riskmodel.datasets.simulate_district`."""

from .plans import plan_visits
from .policies import HistoricalRateVisits, OracleVisits, RiskVisits, UpliftVisits, capacity_per_group
from .uplift import fit_uplift, predict_uplift, resident_counts, uplift_rows, validate_uplift

__all__ = [
    "HistoricalRateVisits",
    "OracleVisits",
    "RiskVisits",
    "UpliftVisits",
    "capacity_per_group",
    "fit_uplift",
    "plan_visits",
    "predict_uplift",
    "resident_counts",
    "uplift_rows",
    "validate_uplift",
]
