"""How many threads the models use: the cores this process is given, never more.

LightGBM and the OpenMP and BLAS libraries start a thread per core of the machine unless
told otherwise; on a machine where another process is busy they then wait on each other
at every step (a barrier waits for its slowest thread, and a thread that shares its core
with a busy process is slow). The backtest and training run their models inside
:func:`limit_threads`, which limits the native thread pools (``threadpoolctl``) and tells
the LightGBM models whose ``n_jobs`` is None how many threads to use.

The number is, first found: the ``n_jobs`` given, an enclosing :func:`limit_threads`, the
environment variable ``RISKMODEL_THREADS``, the cores this process may run on
(``os.sched_getaffinity``).

Importing riskmodel sets ``OMP_WAIT_POLICY=passive`` unless it is set (OpenMP threads
then sleep instead of spinning while they wait); it applies when riskmodel is imported
before LightGBM or scikit-learn load OpenMP.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["available_threads", "limit_threads"]

_LIMIT: ContextVar[int | None] = ContextVar("riskmodel_threads", default=None)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def available_threads(n_jobs: int | None = None) -> int:
    """The threads a model may use.

    Parameters
    ----------
    n_jobs : int, optional
        Threads asked for; a negative number counts from the cores given (-1: all of
        them, -2: all but one), as in joblib. None: an enclosing :func:`limit_threads`,
        else ``RISKMODEL_THREADS``, else the cores given.

    Returns
    -------
    int
        At least 1.

    Raises
    ------
    ValueError
        When ``n_jobs`` is 0, or ``RISKMODEL_THREADS`` is not a whole number other than 0.

    Examples
    --------
    >>> from riskmodel.threads import available_threads, limit_threads
    >>> available_threads(1)
    1
    >>> with limit_threads(1):
    ...     available_threads()
    1
    """
    if n_jobs is None:
        n_jobs = _LIMIT.get()
    if n_jobs is None:
        text = os.environ.get("RISKMODEL_THREADS", "").strip()
        try:
            n_jobs = int(text) if text else _cores()
        except ValueError:
            raise ValueError(
                f"RISKMODEL_THREADS must be a whole number of threads, e.g. 1 or 2; got {text!r}"
            ) from None
    if n_jobs == 0:
        raise ValueError("the number of threads must not be 0: give 1 or more, or -1 for every core given")
    return max(1, n_jobs if n_jobs > 0 else _cores() + 1 + n_jobs)


@contextmanager
def limit_threads(n_jobs: int | None = None) -> Iterator[int]:
    """Run the block with at most :func:`available_threads` ``(n_jobs)`` threads in the
    OpenMP pools and in the LightGBM models whose ``n_jobs`` is None, and one BLAS thread.

    The models' BLAS work is products of a matrix of a few hundred columns with a vector
    (the logistic regressions' gradients), which gain little from threads, and OpenBLAS's
    threads spin while they wait: with another process busy on one of two cores, the
    logistic fits took three times longer on two BLAS threads than on one.

    Yields
    ------
    int
        The number of threads.

    Examples
    --------
    >>> from riskmodel.threads import limit_threads
    >>> with limit_threads(1) as threads:
    ...     threads
    1
    """
    from threadpoolctl import threadpool_limits

    threads = available_threads(n_jobs)
    token = _LIMIT.set(threads)
    try:
        with threadpool_limits(limits=threads, user_api="openmp"), threadpool_limits(limits=1, user_api="blas"):
            yield threads
    finally:
        _LIMIT.reset(token)
