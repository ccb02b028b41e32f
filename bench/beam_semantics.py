"""weir's `semantics = "beam"` against Apache Beam's DirectRunner on random test streams (optional:
needs apache-beam).

Each case is a random windowed job and a random TestStream: tumbling, sliding or session windows,
allowed lateness, early firings every n elements, late firings every n elements or none
(`late = "never"`), discarding or accumulating panes, a sum, count, min or max per key; bundles of elements and
watermark advances, then the watermark to infinity. weir runs it twice with
WindowSpec(semantics="beam"): as its own TestStream feeds it (each bundle's elements one by one), and as
a pipeline's processor feeds it (each bundle one numpy batch, `WindowOperator.process_batch`, which
the columnar store may take). Beam runs it with its TestStream, WindowInto(AfterWatermark(
early=AfterCount, late=AfterCount)) and CombinePerKey of the same aggregate. Every pane must agree,
between weir's two paths and with Beam: key, window, timing, index, whether it is the last, value.

weir follows Beam's Java runner core (runners/core-java: ReduceFnRunner, LateDataUtils,
AfterWatermarkStateMachine); Beam's Python DirectRunner is a second implementation of the same
model, and where the two differ, or where weir chooses for itself (README, "Windows and
watermarks"), this script accounts for it:

- Python expires a window when the watermark passes `end + lateness`, Java when it passes
  `max_ts + lateness` (LateDataUtils.garbageCollectionTime), one microsecond earlier: weir runs
  each case with one microsecond more of allowed lateness, which is Python's rule exactly (for
  what is dropped, and for which pane is last: with no lateness Java's ON_TIME pane is the last,
  as its end-of-window timer is its cleanup timer too, and Python's is not).
- Beam emits an ON_TIME pane even when it is empty (OnTimeBehavior.FIRE_ALWAYS); weir emits none:
  Beam's empty ON_TIME panes are left out, and the indexes of the panes after them one less.
- Beam's runner carries watermarks in whole milliseconds: every time here is a multiple of 1,000us.
- Python's runner does not clean a window up when its allowed lateness is over
  (apache_beam/transforms/trigger.py, GeneralTriggerDriver._output: `TODO(robertwb): allowed
  lateness`); it only drops elements whose own window has expired. And its merge carries a
  finished window's TOMBSTONE (`late = "never"`), where Java's leaves a finished window out. So a
  session whose element comes after another session of its key expired or finished meets it in
  Python, where it is a session of its own in Java (and weir): such a case is found from weir's
  panes (`not_comparable`) and counted apart as "not comparable".
- Beam's runner stalls on some cases (its monitor's "pipeline stall", raised as a tuple, which
  Python reports as a TypeError), as it does when late elements still wait for a late firing at
  the end, which with no cleanup timer it never fires (Java's cleanup timer, and weir, fire them
  in a last pane): such a case is counted as "Beam failed", not compared.
- Beam refuses triggers that may finish (`late = "never"` with lateness) unless told
  (`allow_unsafe_triggers`): it is told.

    .venv/bin/pip install apache-beam      # never a dependency of weir; a separate venv works too
    .venv/bin/python bench/beam_semantics.py [--cases N] [--seed S] [--steps K]

Prints every case that differs (its seed, the case, both sides' panes) and a summary; exits 1 if any
differs. Without apache-beam it says how to get it and exits 0.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import beam_compare  # noqa: E402  (how to find apache-beam, or say how to install it)

from weir.sim.stream.operators import WindowedAggregation  # noqa: E402

from weir.sim.stream.windows import MAX_TIME, Session, Sliding, Trigger, Tumbling, WindowOperator, WindowSpec  # noqa: E402

MS = 1_000  # every time is whole milliseconds (Beam's runner carries watermarks so)
#: One microsecond more of allowed lateness for weir: Beam's Python runner expires a window when the
#: watermark passes end + lateness, Java's runner core (weir's rule) when it passes max_ts + lateness.
PYTHON_LATENESS = 1
TIMINGS = {0: "EARLY", 1: "ON_TIME", 2: "LATE"}

Pane = tuple  # (key, window start, window end, timing, index, is_last, value)

# What Beam's collecting DoFn saw: a module global, found by reference when Beam unpickles the DoFn
# in this same process (the DirectRunner runs in memory), so it must not live in __main__.
COLLECTED: list[tuple] = []


def make_case(seed: int, steps: int = 8) -> dict:
    """A random windowed job and test stream of 2 to `steps` steps, the same for the same seed."""
    rng = random.Random(seed)
    kind = rng.choice(["tumbling", "sliding", "session"])
    windows = {"tumbling": ("tumbling", MS * rng.choice([10, 20])),
               "sliding": ("sliding", MS * 20, MS * rng.choice([5, 10])),
               "session": ("session", MS * rng.choice([3, 5, 10]))}[kind]
    case = {"windows": windows, "lateness": MS * rng.choice([0, 0, 5, 10, 30]),
            "early": rng.choice([None, None, 1, 2, 3]), "late": rng.choice(["fire", "fire", "never"]),
            "late_n": rng.choice([1, 1, 2, 3]), "accumulation": rng.choice(["discarding", "accumulating"]),
            "steps": []}
    watermark = 0
    for _ in range(rng.randint(2, steps)):
        if rng.random() < 0.6:
            case["steps"].append(("add", [(rng.choice([0, 1]), MS * rng.randint(0, 60), rng.randint(1, 9))
                                          for _ in range(rng.randint(1, 4))]))
        else:
            watermark += MS * rng.randint(1, 25)
            case["steps"].append(("watermark", watermark))
    case["aggregate"] = rng.choice(["sum", "sum", "count", "min", "max"])
    return case


def weir_spec(case: dict) -> WindowSpec:
    """The case's windowing in weir, with Beam's semantics (and Python's lateness boundary:
    PYTHON_LATENESS)."""
    kind, *sizes = case["windows"]
    windows = {"tumbling": Tumbling, "sliding": Sliding, "session": Session}[kind](*sizes)
    trigger = Trigger(early_every_n=case["early"], late_every_n=case["late_n"], late=case["late"])
    return WindowSpec(windows, aggregate=case["aggregate"], trigger=trigger, accumulation=case["accumulation"],
                      allowed_lateness=case["lateness"] + PYTHON_LATENESS, semantics="beam")


def _sorted(panes) -> list[Pane]:
    return sorted((p.key, p.start, p.end, p.timing.value, p.index, p.is_last, p.value) for p in panes)


def weir_operator(case: dict, spec: WindowSpec, batch: bool) -> WindowOperator:
    """A window operator of `spec` that has run the case's steps, then the watermark to infinity:
    each group of elements one by one (`WindowOperator.process_bundle`, as weir's TestStream feeds
    a bundle), or, with `batch`, as a pipeline's processor feeds it (each group one batch of numpy
    columns, `WindowOperator.process_batch`, where whole-number keys may take the columnar store).
    Its `panes` and `late` are what it emitted.

    A step may also be ("checkpoint", None), a snapshot, or ("fail", None), a failure, once: the
    operator is restored from the last snapshot as a pipeline's is (`WindowedAggregation.restore`:
    its watermark starts again from MIN_TIME) and the steps after the snapshot run again. What it
    emitted before the failure stays emitted."""
    aggregation = WindowedAggregation(spec)
    op, steps = aggregation.op, case["steps"]
    snapshot, failed, i = (op.snapshot(), 0), False, 0  # (a failure before any checkpoint starts again)
    while i < len(steps):
        step, arg = steps[i]
        i += 1
        if step == "add" and batch:
            keys, times, values = (np.array(column, dtype=np.int64) for column in zip(*arg))
            op.process_batch(keys, times, values)
        elif step == "add":
            op.process_bundle(arg)
        elif step == "watermark":
            op.advance_watermark(arg)
        elif step == "checkpoint":
            snapshot = (op.snapshot(), i)
        elif step == "fail" and not failed:
            failed = True
            aggregation.restore(snapshot[0])
            i = snapshot[1]
    op.advance_watermark(MAX_TIME)
    return op


def weir_panes(case: dict) -> list[Pane]:
    """The case in weir, each bundle's elements one by one, as weir's TestStream feeds them."""
    return _sorted(weir_operator(case, weir_spec(case), batch=False).panes)


def weir_batch_panes(case: dict) -> list[Pane]:
    """The case as a pipeline's processor feeds it: each bundle one batch of numpy columns."""
    return _sorted(weir_operator(case, weir_spec(case), batch=True).panes)


def not_comparable(case: dict, panes: list[Pane]) -> bool:
    """Whether a session element may meet, in Beam's Python runner, a session of its key that the
    Java runner core (and weir) would not let it merge with (see the module's docstring):
    - one that had expired before it came (the watermark past `end + lateness`): Python keeps
      expired windows, Java's cleanup timer has removed it;
    - one whose trigger had finished (`late = "never"`, the watermark at or past its end): Python's
      merge carries the finished window's TOMBSTONE and drops the element, Java's merge leaves a
      finished window out.
    The sessions are weir's `panes`' windows (each session fires before it expires or finishes,
    so each has a pane), less those a merge took into a larger one."""
    if case["windows"][0] != "session":
        return False
    gap, lateness, never = case["windows"][1], case["lateness"], case["late"] == "never"
    windows = {(key, start, end) for key, start, end, *_rest in panes}
    live = [w for w in windows if not any(o != w and o[0] == w[0] and o[1] <= w[1] and w[2] <= o[2] for o in windows)]
    watermark, seen, gone = None, set(), set()  # seen: sessions that had an element in an earlier step
    for step, arg in case["steps"]:
        if step == "watermark":
            watermark = arg
        else:
            for key, t, _value in arg:
                own_expired = watermark is not None and watermark > t + gap + lateness  # (dropped by its own window)
                if not own_expired and any(k == key and t < end and start < t + gap for k, start, end in gone):
                    return True
            seen |= {w for w in live for key, t, _value in arg if w[0] == key and w[1] <= t < w[2]}
        if watermark is not None:
            gone |= {w for w in live if watermark > w[2] + lateness or (never and w in seen and watermark >= w[2])}
    return False


def without_empty_on_time(panes: list[Pane]) -> list[Pane]:
    """Beam's panes less its empty ON_TIME ones (weir emits none), each later pane of the window
    one index lower for each left out before it."""
    out, left_out = [], {}
    for key, start, end, timing, index, last, value in sorted(panes, key=lambda p: (p[0], p[1], p[2], p[4])):
        window = (key, start, end)
        if timing == "ON_TIME" and value in (0, None):  # (values are 1 to 9: 0 or None is an empty pane)
            left_out[window] = left_out.get(window, 0) + 1
            continue
        out.append((key, start, end, timing, index - left_out.get(window, 0), last, value))
    return sorted(out)


def beam_panes(beam, case: dict) -> list[Pane]:
    """The case in Beam's DirectRunner, streaming."""
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions, TypeOptions
    from apache_beam.testing.test_stream import TestStream as BeamTestStream
    from apache_beam.transforms import trigger as triggers
    from apache_beam.transforms import window as windowfns
    from apache_beam.transforms.window import TimestampedValue
    from apache_beam.utils.timestamp import Duration, Timestamp

    kind, *sizes = case["windows"]
    us = [Duration(micros=size) for size in sizes]
    windowfn = {"tumbling": windowfns.FixedWindows, "sliding": windowfns.SlidingWindows,
                "session": windowfns.Sessions}[kind](*us)
    trigger = triggers.AfterWatermark(early=triggers.AfterCount(case["early"]) if case["early"] else None,
                                      late=triggers.AfterCount(case["late_n"]) if case["late"] == "fire" else None)
    mode = (triggers.AccumulationMode.DISCARDING if case["accumulation"] == "discarding"
            else triggers.AccumulationMode.ACCUMULATING)
    stream = BeamTestStream()
    for step, arg in case["steps"]:
        if step == "add":
            stream = stream.add_elements([TimestampedValue((k, v), Timestamp(micros=t)) for k, t, v in arg])
        else:
            stream = stream.advance_watermark_to(Timestamp(micros=arg))
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    options.view_as(TypeOptions).allow_unsafe_triggers = True
    COLLECTED.clear()
    with beam.Pipeline(runner="DirectRunner", options=options) as p:
        (p | stream.advance_watermark_to_infinity().with_output_types(tuple[int, int])
           | beam.WindowInto(windowfn, trigger=trigger, accumulation_mode=mode,
                             allowed_lateness=Duration(micros=case["lateness"]))
           | beam.CombinePerKey(Combine.fn(beam, case["aggregate"]))
           | beam.ParDo(Collect.fn(beam)))
    return without_empty_on_time(COLLECTED)


class Combine:
    """Beam's CombineFn for an aggregate: an empty pane (Beam's empty ON_TIME ones) gives 0 for a
    sum or a count and None for a min or a max (Python's own min of nothing raises)."""

    @staticmethod
    def fn(beam, name: str):
        pick = {"sum": lambda a, b: a + b, "count": lambda a, b: a + b, "min": min, "max": max}[name]
        empty = 0 if name in ("sum", "count") else None

        class _Combine(beam.CombineFn):
            def create_accumulator(self):
                return empty

            def add_input(self, acc, value):
                value = 1 if name == "count" else value
                return value if acc is None else pick(acc, value)

            def merge_accumulators(self, accs):
                out = empty
                for acc in accs:
                    out = acc if out is None else out if acc is None else pick(out, acc)
                return out

            def extract_output(self, acc):
                return acc
        return _Combine()


class Collect:
    """A DoFn that keeps each pane's key, window, timing, index, is_last and value in COLLECTED."""

    @staticmethod
    def fn(beam):
        class _Collect(beam.DoFn):
            def process(self, element, window=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
                key, value = element  # this class is pickled by value: reach COLLECTED through its module
                sys.modules[__name__].COLLECTED.append((key, window.start.micros, window.end.micros,
                                                        TIMINGS.get(pane.timing, "UNKNOWN"), pane.index,
                                                        pane.is_last, value))
        return _Collect()


#: What a case comes to: every pane agrees; some differ; Beam's runner failed on it (a stall: see the
#: module's docstring); or it is not comparable (a session meets an expired or finished one in Python).
VERDICTS = ("agree", "differ", "Beam failed", "not comparable")


def compare(beam, seed: int, steps: int = 8) -> tuple[str, str]:
    """One case in both: its verdict (VERDICTS) and what to say of it."""
    case = make_case(seed, steps)
    ours, batched = weir_panes(case), weir_batch_panes(case)
    if ours != batched:  # (weir's two paths must agree whatever Beam says)
        return "differ", f"seed {seed}: weir's batch path differs from its stream path:\n  case {case}\n  " \
                         f"stream {ours}\n  batch  {batched}"
    if not_comparable(case, ours):
        return "not comparable", ""
    try:
        theirs = beam_panes(beam, case)
    except Exception as e:  # noqa: BLE001 (Beam's runner stalls on some cases: counted, not compared)
        return "Beam failed", f"{type(e).__name__}: {e}".splitlines()[0]
    if ours == theirs:
        return "agree", ""
    return "differ", f"seed {seed} differs:\n  case {case}\n  weir {ours}\n  Beam {theirs}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200, help="how many random cases")
    parser.add_argument("--seed", type=int, default=0, help="the first case's seed (the cases are seeds on from it)")
    parser.add_argument("--steps", type=int, default=8, help="the most steps (bundles, watermark advances) a case has")
    args = parser.parse_args(argv)
    if args.cases < 1 or args.steps < 2:  # (argparse's error: one line, exit code 2)
        parser.error(f"--cases must be at least 1 and --steps at least 2: got {args.cases} and {args.steps}")
    beam = beam_compare.beam_or_say_how("to compare weir's Beam semantics with Beam's DirectRunner")
    if beam is None:
        return 0
    print(f"weir's semantics = 'beam' against Apache Beam {beam.__version__} DirectRunner: {args.cases} random "
          f"test streams, seeds {args.seed} to {args.seed + args.cases - 1}", flush=True)
    verdicts: dict[str, list[int]] = {verdict: [] for verdict in VERDICTS}
    for seed in range(args.seed, args.seed + args.cases):
        verdict, detail = compare(beam, seed, args.steps)
        verdicts[verdict].append(seed)
        if verdict == "differ":
            print(detail, flush=True)
        elif verdict == "Beam failed":
            print(f"  seed {seed}: Beam's runner failed: {detail}", flush=True)
        done = seed - args.seed + 1
        if done % 25 == 0 or done == args.cases:
            print(f"  {done} of {args.cases} cases: " + ", ".join(f"{len(seeds)} {verdict}"
                                                                for verdict, seeds in verdicts.items()), flush=True)
    print("  ".join(f"{verdict:>14}" for verdict in VERDICTS))
    print("  ".join(f"{len(verdicts[verdict]):>14,}" for verdict in VERDICTS))
    for verdict in ("differ", "not comparable"):
        if verdicts[verdict]:
            print(f"{verdict}: seeds " + ", ".join(map(str, verdicts[verdict])))
    return 1 if verdicts["differ"] else 0


if __name__ == "__main__":
    import beam_semantics  # run as the module, so Beam's pickled DoFn finds COLLECTED by reference

    sys.exit(beam_semantics.main())
