"""Sweeps and matrices on a Dask cluster (weir.cluster): the same results as the process pool,
hash for hash; the user's own component modules shipped to workers that could not import them;
a worker that dies has its run done again. A LocalCluster of two worker processes."""

from __future__ import annotations

import sys
import textwrap
from dataclasses import replace

import pytest

import distributed  # noqa: F401  (the `dask` extra, which `make test` installs: missing, this fails)

import weir  # noqa: E402
from weir.cluster import dask_executor, user_modules  # noqa: E402
from weir.cli import main  # noqa: E402
from weir.faults.matrix import correctness_matrix  # noqa: E402

COUNTER = '''
import numpy as np
import weir


class Doubling(weir.Operator):
    """Each record's value twice over: stateless, so a restore changes nothing."""

    def on_batch(self, batch, now):
        return np.asarray(batch.value, dtype=np.int64) * 2
'''

DIES_ONCE = '''
import os
from pathlib import Path

import numpy as np
import weir


class DiesOnce(weir.Operator):
    """Kills the worker process it runs in, the first time any run uses it (a marker file says)."""

    def __init__(self, marker: str = ""):
        self.marker = Path(marker)

    def on_batch(self, batch, now):
        if not self.marker.exists():
            self.marker.write_text("died")
            os._exit(1)
        return np.asarray(batch.value, dtype=np.int64)
'''


def _module(tmp_path, monkeypatch, name: str, source: str):
    """A module only this process can import: made after the cluster's workers started (a spawned
    worker starts with its parent's sys.path of that moment), in a folder only this process adds."""
    folder = tmp_path / "mine"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(folder))


def _scenario(cls: str, params: dict | None = None) -> weir.Scenario:
    base = weir.load_scenario("exactly_once_crash")
    return replace(base, name="dask_user_operator", workload=replace(base.workload, records=2000),
                   operator=weir.ComponentSpec(cls, params or {}), expect=weir.Expect(hold=("no_loss", "drained")))


def test_a_sweep_on_a_local_cluster_is_the_process_pool_s_hash_for_hash(tmp_path, monkeypatch):
    with dask_executor("local", 2) as executor:
        _module(tmp_path, monkeypatch, "weir_dask_doubling", COUNTER)
        scenario = _scenario("weir_dask_doubling:Doubling")
        assert list(user_modules([scenario])) == ["weir_dask_doubling"] and executor.workers == 2
        cluster = weir.sweep(scenario, range(4), executor=executor)  # ships the module, then runs
    pool = weir.sweep(scenario, range(4), workers=2)
    assert cluster.to_dict()["trace_sha256"] == pool.to_dict()["trace_sha256"]
    assert cluster.matches and cluster.workers == 2 and len(set(cluster.to_dict()["trace_sha256"].values())) == 4


def test_without_shipping_the_workers_cannot_import_the_user_s_module(tmp_path, monkeypatch):
    """The control for the test above: the module really is out of the workers' reach."""
    monkeypatch.setattr(sys.modules["weir.sweep"], "ship", lambda *args: [])
    with dask_executor("local", 1) as executor:
        _module(tmp_path, monkeypatch, "weir_dask_unshipped", COUNTER)
        scenario = _scenario("weir_dask_unshipped:Doubling")
        with pytest.raises(ModuleNotFoundError, match="weir_dask_unshipped"):
            weir.sweep(scenario, range(1), executor=executor)


def test_a_worker_that_dies_has_its_run_done_again(tmp_path, monkeypatch):
    marker = tmp_path / "died"
    with dask_executor("local", 2) as executor:
        _module(tmp_path, monkeypatch, "weir_dask_dies", DIES_ONCE)
        scenario = _scenario("weir_dask_dies:DiesOnce", {"marker": str(marker)})
        result = weir.sweep(scenario, range(2), executor=executor)
    assert marker.read_text() == "died" and result.matches  # one worker died; its run was retried and held
    assert result.to_dict()["trace_sha256"] == weir.sweep(scenario, range(2), workers=1).to_dict()["trace_sha256"]


def test_the_matrix_on_a_cluster_is_the_matrix_and_the_cli_takes_a_scheduler(capsys):
    with dask_executor("local", 2) as executor:
        on_cluster = correctness_matrix(["at-least-once"], ["crash"], runs=3, seed=5, executor=executor)
    assert on_cluster.to_dict() == correctness_matrix(["at-least-once"], ["crash"], runs=3, seed=5).to_dict()
    assert main(["sweep", "exactly_once_crash", "--seeds", "3", "--scheduler", "local", "--workers", "2"]) == 0
    assert "seeds 0..2 on 2 worker(s)" in capsys.readouterr().out


def test_a_scheduler_that_does_not_answer_is_bad_input_in_one_line(monkeypatch, capsys):
    from weir import cluster
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1)
    assert main(["sweep", "exactly_once_crash", "--seeds", "2", "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("weir: --scheduler: got 'tcp://127.0.0.1:9'") and err.count("\n") == 1
