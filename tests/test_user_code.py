"""Broken user code is a finding, not a crash (weir.sim.stream.guard, weir.sim.kernel.watchdog).

Every hook weir calls on a user component, made to raise, ends the run with status
`user_code_raised` and a violated `no_user_errors` naming the component, the hook, the simulated
time and what it was handling; what a hook returns is checked against its base; a hook that does
not return within run.user_timeout (wall clock) is stopped; and explore shrinks such a finding
like any other violation.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import weir
from weir.sim.stream.guard import HOOKS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))

import components  # noqa: E402  (examples/components.py)


class Planted(LookupError):
    pass


def _boom(*args, **kwargs):
    raise Planted("planted")


def _raising(cls: type, hook: str) -> type:
    """`cls` with `hook` replaced by one that raises."""
    fn = staticmethod(_boom) if hook == "merge" else _boom
    return type(f"{cls.__name__}Raises", (cls,), {hook: fn, "__module__": __name__})


def _swap(s: weir.Scenario, kind: str, cls: type) -> weir.Scenario:
    if kind == "operator":
        return replace(s, operator=weir.ComponentSpec(cls, s.operator.params))
    if kind == "sink":
        return replace(s, pipeline=replace(s.pipeline, sink=cls))
    if kind == "source":
        return replace(s, workload=replace(s.workload, source=cls))
    if kind == "replay":
        return replace(s, retry=replace(s.retry, replay_job=cls))
    if kind == "consumer":
        return replace(s, pipeline=replace(s.pipeline, consumer=cls))
    if kind == "relay":
        return replace(s, outbox=replace(s.outbox, relay=cls))
    return replace(s, watermarks=replace(s.watermarks, strategy=cls))


def _original(s: weir.Scenario, kind: str) -> type:
    return {"operator": lambda: s.operator.cls, "sink": lambda: s.pipeline.sink_spec.cls,
            "source": lambda: s.workload.source_spec.cls, "replay": lambda: s.retry.replay_spec.cls,
            "consumer": lambda: s.pipeline.consumer_spec.cls, "relay": lambda: s.outbox.relay_spec.cls,
            "watermarks": lambda: s.watermarks.generator().__weir_guarded__}[kind]()


# Every hook of weir's bases (guard.HOOKS), and an example scenario that calls it. Two are left
# out because no example calls them: notify_checkpoint_aborted (no checkpoint aborts) and
# ConsumerPolicy.periodic (the example's policy does not commit periodically).
CALLED = [
    ("user_components", "operator", hook, phase) for hook, phase in (
        ("on_batch", "run"), ("open", "run"), ("on_watermark", "run"), ("notify_checkpoint_complete", "run"),
        ("close", "run"), ("snapshot", "run"), ("restore", "run"), ("state_size", "setup"),
        ("changed_entries", "run"))
] + [
    ("user_components", "sink", "write", "run"), ("user_components", "sink", "contents", "results"),
    ("user_components", "sink", "close", "results"), ("user_components", "source", "generate", "setup"),
    ("user_components", "watermarks", "on_event", "run"), ("user_components", "watermarks", "current", "run"),
    ("user_components", "watermarks", "merge", "run"),
    ("consumer_policy", "consumer", "resume", "run"), ("consumer_policy", "consumer", "on_poll", "run"),
    ("consumer_policy", "consumer", "on_checkpoint", "run"), ("dlq_replay", "replay", "fix", "run"),
    ("outbox_relay", "relay", "select", "run"),
] + [
    ("two_phase_sink", "sink", hook, "results" if hook in ("contents", "close") else "run") for hook in (
        "begin_transaction", "write", "pre_commit", "commit", "abort", "recover_and_commit", "recover_and_abort",
        "finish_recovering", "contents", "close")
]


def test_the_list_covers_every_hook_but_the_two_no_example_calls():
    every = {hook for table in HOOKS.values() for hook in table}
    assert every - {hook for _e, _k, hook, _p in CALLED} == {"notify_checkpoint_aborted", "periodic"}


@pytest.mark.parametrize("example, kind, hook, phase", CALLED, ids=[f"{e}-{k}-{h}" for e, k, h, _p in CALLED])
def test_every_hook_that_raises_is_a_finding_naming_it(example, kind, hook, phase):
    s = weir.load_scenario(str(EXAMPLES / f"{example}.toml"))
    broken = _raising(_original(s, kind), hook)
    result = weir.run(_swap(s, kind, broken))
    assert result.status == "user_code_raised", (example, hook, result.status)
    verdict = result.verdict("no_user_errors")
    error = verdict.evidence["error"]
    assert not verdict.held and not result.matches
    assert (error["component"], error["hook"], error["phase"]) == (broken.__name__, hook, phase)
    assert error["error"] == "Planted: planted" and "_boom" in error["traceback"]
    assert result.user_errors[-1].startswith(f"{broken.__name__}.{hook} ")
    if phase == "run":
        assert f" at {error['at'] / 1000:g}ms" in result.user_errors[-1]
    else:  # nothing but the finding and the run's end can be judged
        assert [v.invariant for v in result.verdicts] == ["no_user_errors", "drained"]


def test_a_batch_hook_names_the_batch_it_was_handling():
    s = weir.load_scenario(str(EXAMPLES / "user_components.toml"))
    result = weir.run(_swap(s, "sink", _raising(components.DictSink, "write")))
    line = result.user_errors[0]
    assert " on sink (a batch of " in line and " records of partition " in line and ", record ids " in line


# ---- what a hook returns ---------------------------------------------------------------------


class Returns(weir.Operator):
    """on_batch returns whatever the class attribute `make(batch)` makes."""

    make = staticmethod(lambda batch: batch.value)

    def on_batch(self, batch, now):
        return type(self).make(batch)


def _returning(make) -> weir.RunResult:
    cls = type("Returns", (Returns,), {"make": staticmethod(make), "__module__": __name__})
    return weir.run(weir.Scenario(workload=weir.Workload(records=300), operator=weir.ComponentSpec(cls)))


BAD = st.one_of(
    st.just(lambda b: None), st.just(lambda b: "x"), st.just(lambda b: {"a": 1}), st.just(lambda b: 3),
    st.just(lambda b: b.value.astype(float)), st.just(lambda b: b.value.astype(float) + 0.5),
    st.just(lambda b: b.value[:-1]), st.just(lambda b: np.concatenate([b.value, b.value])),
    st.just(lambda b: b.value.reshape(1, -1)), st.just(lambda b: b.value.astype(str)),
    st.just(lambda b: [str(v) for v in b.value.tolist()]), st.just(lambda b: b.value.astype(bool)),
    st.integers(1, 5).map(lambda k: (lambda b: b.value[:max(len(b) - k, 0)])),
)
GOOD = st.one_of(
    st.just(lambda b: b.value), st.just(lambda b: b.value.tolist()), st.just(lambda b: tuple(b.value.tolist())),
    st.just(lambda b: b.value.astype(np.int32)), st.just(lambda b: b.value.astype(np.uint16)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(make=BAD)
def test_an_output_of_the_wrong_type_length_or_dtype_is_a_finding_saying_what(make):
    result = _returning(make)
    assert result.status == "user_code_raised"
    line = result.user_errors[0]
    assert line.startswith("Returns.on_batch at ") and "; it returns " in line, line
    assert "\n" not in line and len(line) <= 300


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(make=GOOD)
def test_an_output_numpy_reads_as_one_int_per_record_is_taken(make):
    result = _returning(make)
    assert result.status == "drained" and result.user_errors == () and result.matches


@pytest.mark.parametrize("returned, says", [
    (None, "returned None; it returns the watermark, an int (us)"),
    (1.5, "returned float; it returns the watermark, an int (us)"),
    (2**70, "returned 1180591620717411303424; it returns the watermark, an int (us) from"),
])
def test_a_watermark_that_is_not_an_int_is_a_finding(returned, says):
    s = weir.load_scenario(str(EXAMPLES / "user_components.toml"))
    cls = type("Odd", (components.CautiousWatermarks,), {"current": lambda self: returned, "__module__": __name__})
    result = weir.run(_swap(s, "watermarks", cls))
    assert result.status == "user_code_raised" and says in result.user_errors[0], result.user_errors


def test_contents_must_be_int_columns_of_one_length():
    s = weir.load_scenario(str(EXAMPLES / "user_components.toml"))
    cls = type("Ragged", (components.DictSink,), {
        "contents": lambda self: {"record_id": np.arange(3), "value": np.arange(2)}, "__module__": __name__})
    result = weir.run(_swap(s, "sink", cls))
    assert "returned 2 values for 3 records; it returns int64 columns of one length (column 'value')" in \
        result.user_errors[0]


# ---- the wall-clock bound ----------------------------------------------------------------------

HANGS = '''
import weir

class Hangs(weir.Operator):
    def on_batch(self, batch, now):
        while now > 20_000:
            try:
                while True:
                    pass
            except Exception:  # swallowing exceptions does not keep the watchdog out
                pass
        return batch.value
'''


def test_a_hook_that_never_returns_is_stopped_with_a_verdict_saying_so(tmp_path):
    (tmp_path / "hangs.py").write_text(HANGS)
    (tmp_path / "s.toml").write_text('[workload]\nrecords = 2000\n[operator]\nclass = "hangs:Hangs"\n'
                                     '[run]\nuser_timeout = "0.3s"\n')
    # in a process of its own with a (generous) timeout: if the watchdog failed, the test fails, not hangs
    out = subprocess.run([sys.executable, "-m", "weir.cli", "run", str(tmp_path / "s.toml"), "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and out.stderr == "", out.stderr
    data = json.loads(out.stdout)
    assert data["status"] == "user_code_timed_out"
    verdict = next(v for v in data["verdicts"] if v["invariant"] == "no_user_errors")
    assert not verdict["held"] and verdict["evidence"]["error"]["timed_out"]
    assert data["user_errors"][0].startswith("Hangs.on_batch at ")
    assert data["user_errors"][0].endswith("did not return within 0.3s of wall-clock time (run.user_timeout)")


def test_a_watchdog_that_does_not_fire_changes_nothing():
    s = weir.load_scenario(str(EXAMPLES / "user_components.toml"))
    watched = weir.run(s)
    unwatched = weir.run(replace(s, run=replace(s.run, user_timeout=0)))
    assert watched.trace_sha256 == unwatched.trace_sha256 and watched.matches


def test_user_timeout_is_checked_like_any_duration():
    with pytest.raises(weir.ScenarioError, match="run.user_timeout"):
        weir.RunLimits(user_timeout="soon")
    with pytest.raises(weir.ScenarioError, match="run.on_user_error: got 'retry'"):
        weir.RunLimits(on_user_error="retry")


# ---- explore -----------------------------------------------------------------------------------


class RestoreFails(components.KeyCounter):
    """A bug only a restore shows: it cannot take its own snapshot back."""

    def restore(self, snapshot):
        raise KeyError("scale")


def test_explore_finds_and_shrinks_a_hook_that_fails_only_after_a_crash():
    s = weir.load_scenario(str(EXAMPLES / "user_components.toml"))
    s = replace(_swap(s, "operator", RestoreFails), faults=())
    assert weir.run(s).matches  # no crash, no restore: nothing wrong
    report = weir.explore(s, budget_s=600, seed=0, max_runs=30)
    ce = report.counterexample
    assert ce is not None, f"nothing found in {report.runs} runs (search seed 0)"
    assert ce.verdict.invariant == "no_user_errors" and ce.verdict.evidence["error"]["hook"] == "restore"
    assert len(ce.faults) == 1 and ce.faults[0].kind == "crash"
    replayed = weir.run(ce.scenario, ce.seed, ce.faults)
    assert replayed.status == "user_code_raised" and not replayed.verdict("no_user_errors").held


def test_the_report_keeps_the_users_traceback(tmp_path):
    s = weir.load_scenario(str(EXAMPLES / "user_components.toml"))
    run = weir.execute(_swap(s, "sink", _raising(components.DictSink, "write")))
    from weir.analysis.report import write_report
    md, html = write_report(run, tmp_path / "report")
    text = md.read_text()
    assert "## Your code: DictSinkRaises.write" in text and "raise Planted(\"planted\")" in text
    assert "Planted: planted" in html.read_text()
