"""weir against Apache Beam's DirectRunner on the same windowed job (optional: needs apache-beam).

The job is `make bench`'s windowed one: 100 keys over 4 partitions, a 2ms tumbling-window sum per
key, watermarks 1ms behind the newest event. weir simulates it (source, network, keyed window
operator, checkpoints every 100ms, panes written to its sink); Beam runs the same records in its
DirectRunner, in batch (`beam.Create` of timestamped elements) and in streaming (`TestStream`: the
producer's batches in the order weir's log holds them, the watermark advanced after each as weir's
source would, then to infinity, which is what fires the last windows). Every window's sum must agree
between all three, the last windows included, or the script says which window differs and exits 1.

    .venv/bin/pip install apache-beam      # never a dependency of weir; a separate venv works too
    .venv/bin/python bench/beam_compare.py [--records N] [--stream-records N]

Without apache-beam it says how to get it and exits 0, so it can sit in any script.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import windowed  # noqa: E402  (the bench's windowed scenario: the job both sides run)

from weir.analysis.windowed import event_times  # noqa: E402
from weir.sim.scenario.run import execute  # noqa: E402

REPEATS = 3
Window = tuple[int, int, int]  # (key, start, end) in microseconds

# What the collecting DoFn saw, by run: a module global, found by reference when Beam unpickles the
# DoFn in this same process (the DirectRunner runs in memory), so it must not live in __main__.
COLLECTED: dict[str, list[tuple[int, int, int, int]]] = {}


def weir_windows(records: int, repeats: int | None = None) -> tuple[float, dict[Window, int], object]:
    """Run the windowed scenario in weir `repeats` times (REPEATS unless given); return the median
    time, every window's final sum, the run."""
    scenario = windowed(records, 500)
    times, run = [], None
    for _ in range(REPEATS if repeats is None else repeats):
        t0 = time.perf_counter()
        run = execute(scenario)
        times.append(time.perf_counter() - t0)
    assert run.status == "drained", f"weir's run did not drain: {run.status}"
    w = run.windows
    final = w["is_last"] == 1
    sums = dict(zip(zip(w["key"][final].tolist(), w["window_start"][final].tolist(), w["window_end"][final].tolist()),
                    w["value"][final].tolist()))
    return statistics.median(times), sums, run


def _beam():
    try:
        import apache_beam as beam
    except ImportError:
        return None
    return beam


def beam_or_say_how(purpose: str):
    """apache_beam, its logging quietened to errors; or None, once this has said how to install it
    `purpose` ("to compare ...")."""
    beam = _beam()
    if beam is None:
        print("apache-beam is not installed: `.venv/bin/pip install apache-beam` (or use a venv of its own with "
              f"weir installed) {purpose}")
        return None
    import logging
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    return beam


class Collect:
    """Builds the DoFn that records (key, window start, window end, sum) under a name in COLLECTED."""

    @staticmethod
    def fn(beam, name: str):
        class _Collect(beam.DoFn):
            def process(self, element, window=beam.DoFn.WindowParam):
                key, total = element  # this class is pickled by value: reach COLLECTED through its module
                sys.modules[__name__].COLLECTED[name].append((key, window.start.micros, window.end.micros, total))
        return _Collect()


def _sums(name: str) -> dict[Window, int]:
    out: dict[Window, int] = {}
    for key, start, end, total in COLLECTED.pop(name):
        assert (key, start, end) not in out, f"Beam fired window {(key, start, end)} twice"
        out[(key, start, end)] = total
    return out


def windowed_sum(beam, name: str, source, options=None, beside=None) -> tuple[float, dict[Window, int], float]:
    """Time the job REPEATS times: `source(pipeline)` gives the timestamped (key, value) elements,
    windowed here into 2ms fixed windows and summed per key. Before each, time `beside()` (weir's
    run of the same job), so that both sides meet the machine's load alike. Return the median of
    Beam's times, what it fired, and the median of `beside`'s times."""
    from apache_beam.transforms.window import FixedWindows
    from apache_beam.utils.timestamp import Duration

    spent, beside_spent, sums = [], [], {}
    for _ in range(REPEATS):
        if beside is not None:
            t0 = time.perf_counter()
            beside()
            beside_spent.append(time.perf_counter() - t0)
        COLLECTED[name] = []
        t0 = time.perf_counter()
        with beam.Pipeline(runner="DirectRunner", options=options) as p:
            (source(p)
               | beam.WindowInto(FixedWindows(Duration(micros=2_000)))
               | beam.CombinePerKey(sum)
               | beam.ParDo(Collect.fn(beam, name)))
        spent.append(time.perf_counter() - t0)
        sums = _sums(name)
    return statistics.median(spent), sums, statistics.median(beside_spent) if beside_spent else 0.0


def beam_batch(beam, keys: list[int], times: list[int], values: list[int], beside=None) -> tuple[float, dict[Window, int], float]:
    """The job in batch: (key, time, value) rows, each timestamped by a Map (a `Create` of
    TimestampedValues is four times slower: it pickles each)."""
    from apache_beam.transforms.window import TimestampedValue
    from apache_beam.utils.timestamp import Timestamp

    rows = list(zip(keys, times, values))
    return windowed_sum(beam, "batch", lambda p: (
        p | beam.Create(rows, reshuffle=False)
          | beam.Map(lambda r: TimestampedValue((r[0], r[2]), Timestamp(micros=r[1]))).with_output_types(tuple[int, int])),
        beside=beside)


def beam_streaming(beam, run, keys: list[int], times: list[int], values: list[int],
                   beside=None) -> tuple[float, dict[Window, int], float]:
    """The job in streaming: TestStream adds each of the producer's batches (weir's records in
    record-id order, one batch per event time), then advances the watermark to the batch's time less
    the 1ms bound, as weir's source does; at the end, to infinity."""
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
    from apache_beam.testing.test_stream import TestStream
    from apache_beam.transforms.window import TimestampedValue
    from apache_beam.utils.timestamp import Timestamp

    bound = run.scenario.watermarks.bound
    steps: list[tuple[list, int | None]] = []  # (the batch's elements, the watermark after it, if it moves)
    batch: list = []
    watermark = -1
    for i, (k, t, v) in enumerate(zip(keys, times, values)):
        batch.append(TimestampedValue((k, v), Timestamp(micros=t)))
        if i + 1 == len(keys) or times[i + 1] != t:
            moves = t - bound > watermark  # TestStream's watermark must strictly advance
            watermark = max(watermark, t - bound)
            steps.append((batch, watermark if moves else None))
            batch = []

    def test_stream(p):  # a TestStream belongs to one pipeline: one per repeat
        stream = TestStream()
        for elements, mark in steps:
            stream = stream.add_elements(elements)
            if mark is not None:
                stream = stream.advance_watermark_to(Timestamp(micros=mark))
        return p | stream.advance_watermark_to_infinity().with_output_types(tuple[int, int])

    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    return windowed_sum(beam, "streaming", test_stream, options, beside)


def first_difference(ours: dict[Window, int], theirs: dict[Window, int]) -> str | None:
    """None if both hold the same windows with the same sums; else one line naming the first that differs."""
    for window in sorted(ours.keys() | theirs.keys()):
        if ours.get(window) != theirs.get(window):
            return f"window (key, start us, end us) {window}: weir {ours.get(window)}, Beam {theirs.get(window)}"
    return None


def records_of(run) -> tuple[list[int], list[int], list[int]]:
    """The run's records as the producer wrote them (record-id order): keys, event times (us), values."""
    order = run.source["record_id"].argsort(kind="stable")
    return (run.source["key"][order].tolist(), event_times(run, False)[order].tolist(),
            run.source["value"][order].tolist())


def compare(label: str, records: int, beam_job) -> bool:
    """One comparison: a weir run for the records and its windows (a warm-up, not timed), then
    REPEATS of (weir's run, Beam's run), interleaved; medians of each side."""
    _, ours, run = weir_windows(records, repeats=1)
    scenario = windowed(records, 500)
    beam_s, theirs, weir_s = beam_job(run, lambda: execute(scenario))
    last = max(start for _key, start, _end in ours)
    differs = first_difference(ours, theirs)
    verdict = "every window's sum agrees" if differs is None else f"DIFFERS: {differs}"
    print(f"  {label:<28} {records:>7,} records, {len(ours):>6,} windows (last starts at {last:,} us): "
          f"weir {records / weir_s:>9,.0f} rec/s, Beam {records / beam_s:>8,.0f} rec/s, "
          f"weir/Beam {beam_s / weir_s:>5.0f}x; {verdict}", flush=True)
    return differs is None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="records for the batch comparison")
    parser.add_argument("--stream-records", type=int, default=20_000, help="records for the streaming comparison")
    args = parser.parse_args(argv)
    beam = beam_or_say_how("to compare weir with Beam's DirectRunner")
    if beam is None:
        return 0
    print(f"weir against Apache Beam {beam.__version__} DirectRunner: 2ms tumbling sum per key, 100 keys, "
          f"watermarks 1ms behind; median of {REPEATS}, each side's whole run, interleaved")
    agree = compare("batch (beam.Create)", args.records,
                    lambda run, weir_run: beam_batch(beam, *records_of(run), beside=weir_run))
    agree &= compare("streaming (TestStream)", args.stream_records,
                     lambda run, weir_run: beam_streaming(beam, run, *records_of(run), beside=weir_run))
    return 0 if agree else 1


if __name__ == "__main__":
    import beam_compare  # run as the module, so Beam's pickled DoFns find COLLECTED by reference

    sys.exit(beam_compare.main())
