"""Sweeps and matrices on a Dask cluster (`dask.distributed`, the `dask` extra).

A run is a pure function with a small picklable result, so a cluster runs it as a process pool
does, hash for hash. `dask_executor(scheduler)` gives what `weir.sweep(..., executor=)` and
`correctness_matrix(..., executor=)` take: `"local"` starts a LocalCluster on this machine (one
single-threaded worker process per CPU, or `workers`); anything else is the address of a running
scheduler (`tcp://host:8786`). Each run is submitted with retries, so a worker that dies has its
runs done again elsewhere.

A scenario may name the user's own components (`mycomponents:RunningSum`) or oracle: workers on
other machines cannot import those, so weir.sweep `ship`s their modules (a module file, or a whole
package zipped) to every worker before it submits a run, through the executor's `upload_file`
(which `dask_executor` gives it; with an executor of your own, call `ship(client, scenarios)`
first). The matrix runs weir's own scenarios only: nothing to ship. Installed packages (in site-packages) are not shipped: a
cluster's workers are expected to have the same environment, weir included.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from weir.sim.kernel.errors import ScenarioError
from weir.sim.scenario.pool import ship, user_modules

__all__ = ["dask_executor", "ship", "user_modules", "RETRIES"]

#: How many times a run is submitted again if the worker running it dies.
RETRIES = 3
#: How long to wait for a scheduler at an address to answer (seconds).
CONNECT_TIMEOUT = 10
#: What a scheduler's address looks like: a Dask protocol and host:port, or host:port.
ADDRESS = re.compile(r"(?:(?:tcp|tls|ucx|ws|wss)://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}")


@contextmanager
def dask_executor(scheduler: str = "local", workers: int | None = None,
                  scenarios: Iterable[Any] = ()) -> Iterator[Any]:
    """An executor on a Dask cluster: a LocalCluster (`"local"`) or the scheduler at an address,
    with the scenarios' user modules shipped to its workers (the runs a sweep submits ship their
    own too). Its `workers` attribute is the number of workers. Closed (and a LocalCluster
    stopped) on leaving."""
    if scheduler != "local" and not ADDRESS.fullmatch(scheduler):
        raise ScenarioError("--scheduler", scheduler, "'local', or a Dask scheduler's address such as "
                            "tcp://10.0.0.5:8786 (or host:port)")
    try:
        from distributed import Client, LocalCluster
    except ImportError as e:
        raise ScenarioError("--scheduler", scheduler, "a Dask scheduler, with Dask installed: "
                            "pip install 'weir-sim[dask]'") from e
    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT}s")
        except (OSError, TimeoutError) as e:
            raise ScenarioError("--scheduler", scheduler, f"the address of a running Dask scheduler: none answered "
                                f"within {CONNECT_TIMEOUT}s ({type(e).__name__})") from None
    try:
        executor = client.get_executor(retries=RETRIES, pure=False)
        executor.workers = len(client.scheduler_info()["workers"])
        executor.upload_file = client.upload_file  # weir.sweep ships what its runs need through it
        ship(executor, scenarios)
        yield executor
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
