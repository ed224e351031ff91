"""Threads: the models use the cores given, never more, and the native pools are limited inside."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_info

from riskmodel.models import GBMCount
from riskmodel.threads import available_threads, limit_threads


def test_threads_come_from_n_jobs_then_the_limit_then_the_environment(monkeypatch):
    monkeypatch.setenv("RISKMODEL_THREADS", "3")
    assert available_threads() == 3
    assert available_threads(1) == 1
    with limit_threads(1):
        assert available_threads() == 1  # an enclosing limit beats the environment
        with limit_threads():
            assert available_threads() == 1  # and a nested default keeps it
    assert available_threads() == 3
    monkeypatch.delenv("RISKMODEL_THREADS")
    cores = available_threads()
    assert cores >= 1 and available_threads(-1) == cores and available_threads(-cores - 5) == 1


@pytest.mark.parametrize(("n_jobs", "env", "match"), [(0, None, "must not be 0"), (None, "two", "RISKMODEL_THREADS")])
def test_bad_thread_counts_are_refused(monkeypatch, n_jobs, env, match):
    if env is not None:
        monkeypatch.setenv("RISKMODEL_THREADS", env)
    with pytest.raises(ValueError, match=match):
        available_threads(n_jobs)


def test_limit_threads_limits_openmp_and_lightgbm():
    import lightgbm  # noqa: F401 - loads OpenMP

    with limit_threads(1):
        assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "openmp"} == {1}
        assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} <= {1}
        assert GBMCount().lightgbm_params()["n_jobs"] == 1
    assert GBMCount(n_jobs=2).lightgbm_params()["n_jobs"] == 2
