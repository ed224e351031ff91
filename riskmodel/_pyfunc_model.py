"""The file MLflow runs to rebuild a logged model ("models from code"): no pickled class."""

import mlflow

from riskmodel.tracking import RiskPyfunc

mlflow.models.set_model(RiskPyfunc())
