"""weir's `semantics = "flink"` against Apache Flink's own window operator on random test streams
(optional: needs Java 11+ and Flink's jars).

Each case is a random windowed job and a random script of elements and watermarks: tumbling,
sliding (either aligned to an offset, sometimes) or session windows, allowed lateness, discarding or accumulating panes, a sum, count, min
or max per key, and the late side output. Four cases in ten also have a checkpoint and, after
it, a failure: restored from the checkpoint, the steps between run again. weir runs it twice with
WindowSpec(semantics="flink"): as its own TestStream feeds an operator, and as a pipeline's
processor does (each step's elements one numpy batch, `WindowOperator.process_batch`, which the
columnar store may take), with a pipeline's snapshot and restore (`WindowedAggregation.restore`).
Flink 1.20 runs it in a local mini cluster (`bench/flink/WindowOracle.java`, compiled here with
javac): a source that emits the elements, each with its timestamp, and the watermarks in the
script's order, then ends (and so emits Flink's MAX_WATERMARK); keyBy, the same window assigner,
allowedLateness, sideOutputLateData, Flink's EventTimeTrigger (accumulating) or
PurgingTrigger.of(EventTimeTrigger) (discarding), the aggregate as an AggregateFunction; with a
checkpoint, checkpointing taken only there and one restart after the failure. Times are given to
Flink as the same integers weir has, so every boundary is exact (a window of 10 is Flink's 10 ms).

What must agree, per case:
- every window's firings, in the order it fired (before a failure and after it): key, window
  bounds, timing and value. Flink has no panes; a firing's timing is read from the trigger call
  behind it (onEventTime at the window's maxTimestamp is ON_TIME unless the window fired at or
  past its end before, as after a restore; onElement before the watermark reached it EARLY; any
  other LATE: weir's timing, and Beam's PaneInfoTracker's);
- the late side output: the same elements, as often.
Not compared: pane indexes beyond their order, and `is_last`, which are weir's (Flink has neither);
early and count triggers (`early_every_n`, `late_every_n`), which Flink has no built-in trigger
for: the cases use Flink's default trigger, which is weir's `Trigger()` under Flink semantics.

    .venv/bin/pip install apache-flink-libraries==1.20.5   # Flink's jars (pyflink/lib), about 240 MB
    .venv/bin/python bench/flink_semantics.py [--cases N] [--seed S] [--steps K] [--flink-lib DIR]

Flink's jars are found in `--flink-lib`, else $FLINK_LIB, else the installed pyflink's lib, else
$FLINK_HOME/lib. Prints every case that differs (its seed, the case, both sides' firings) and a
summary; exits 1 if any differs or Flink failed on any. Without Java or the jars it says how to get them and exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from beam_semantics import weir_operator  # noqa: E402  (a case through weir's window operator, either path)

from weir.sim.stream.windows import Session, Sliding, Tumbling, WindowSpec  # noqa: E402

ORACLE = Path(__file__).resolve().parent / "flink" / "WindowOracle.java"
FLINK = "1.20.5"

Firing = tuple  # (timing, value)
Outcome = tuple  # ({(key, start, end): [Firing, ...]}, sorted late elements [(key, timestamp, value), ...])


def make_case(seed: int, steps: int = 8) -> dict:
    """A random windowed job and script of 2 to `steps` steps, the same for the same seed. Times are
    small integers, so elements and watermarks land on window boundaries often; a fifth of the
    cases have them 50 lower, so many fall before 0."""
    rng = random.Random(seed)
    kind = rng.choice(["tumbling", "sliding", "session"])
    windows = {"tumbling": ("tumbling", rng.choice([10, 20])),
               "sliding": ("sliding", 20, rng.choice([5, 10])),
               "session": ("session", rng.choice([3, 5, 10]))}[kind]
    case = {"windows": windows, "lateness": rng.choice([0, 0, 1, 5, 10, 30]),
            "accumulation": rng.choice(["discarding", "accumulating"]),
            "aggregate": rng.choice(["sum", "sum", "count", "min", "max"]), "steps": []}
    watermark = -1
    for _ in range(rng.randint(2, steps)):
        if rng.random() < 0.6:
            case["steps"].append(("add", [(rng.choice([0, 1]), rng.randint(0, 60), rng.randint(1, 9))
                                          for _ in range(rng.randint(1, 4))]))
        else:
            watermark += rng.randint(1, 25)
            case["steps"].append(("watermark", watermark))
    if rng.random() < 0.4:  # a checkpoint, and a failure after it: restored, the steps between run again
        script = case["steps"]
        at = rng.randint(0, len(script))
        fail = rng.randint(at, len(script))
        case["steps"] = [*script[:at], ("checkpoint", None), *script[at:fail], ("fail", None), *script[fail:]]
    if kind != "session":  # windows aligned to an offset (Flink's must be less than the slide: 5 at least)
        case["offset"] = rng.choice([0, 0, 0, 2, -3, 4])
    if rng.random() < 0.2:  # times before 0: a window start is a remainder, and Java's % keeps the sign
        case["steps"] = [(step, [(k, t - 50, v) for k, t, v in arg] if step == "add" else
                          arg - 50 if step == "watermark" else arg) for step, arg in case["steps"]]
    return case


def weir_spec(case: dict) -> WindowSpec:
    kind, *sizes = case["windows"]
    offset = {"offset": case["offset"]} if case.get("offset") else {}
    windows = {"tumbling": Tumbling, "sliding": Sliding, "session": Session}[kind](*sizes, **offset)
    return WindowSpec(windows, aggregate=case["aggregate"], accumulation=case["accumulation"],
                      allowed_lateness=case["lateness"], semantics="flink", side_output_late=True)


def weir_outcome(case: dict, batch: bool) -> Outcome:
    op = weir_operator(case, weir_spec(case), batch)
    firings: dict[tuple, list[Firing]] = {}
    for p in op.panes:
        firings.setdefault((p.key, p.start, p.end), []).append((p.timing.value, p.value))
    return firings, sorted((e.key, e.timestamp, e.value) for e in op.late)


def case_lines(seed: int, case: dict) -> list[str]:
    """The case in WindowOracle's input format."""
    kind, *sizes = case["windows"]
    size, slide = sizes[0], sizes[1] if len(sizes) > 1 else 0
    lines = [f"CASE {seed} {kind} {size} {slide} {case.get('offset', 0)} {case['lateness']} {case['accumulation']} "
             f"{case['aggregate']}"]
    for step, arg in case["steps"]:
        if step == "add":
            lines += [f"A {k} {t} {v}" for k, t, v in arg]
        else:
            lines.append({"watermark": f"W {arg}", "checkpoint": "C", "fail": "F"}[step])
    return lines + ["END"]


def parse_output(lines) -> dict[int, Outcome | str]:
    """WindowOracle's output, by case: each window's firings in order and the late elements, or
    what Flink raised if the case's job failed."""
    out: dict[int, tuple] = {}
    failed: dict[int, str] = {}
    for line in lines:
        kind, _, rest = line.strip().partition(" ")
        if kind == "FAILED":
            seed, _, error = rest.partition(" ")
            failed[int(seed)] = error
            continue
        if kind not in ("P", "L", "DONE"):
            continue  # (anything else Flink may print)
        fields = rest.split()
        firings, late = out.setdefault(int(fields[0]), ({}, []))
        if kind == "P":
            key, start, end, timing, value = fields[1:]
            firings.setdefault((int(key), int(start), int(end)), []).append((timing, int(value)))
        elif kind == "L":
            late.append(tuple(int(f) for f in fields[1:]))
    return {**{seed: (firings, sorted(late)) for seed, (firings, late) in out.items()}, **failed}


def flink_lib(given: str | None) -> Path | None:
    """Where Flink's jars are (a folder holding flink-dist-*.jar), or None."""
    places = [given, os.environ.get("FLINK_LIB")]
    spec = importlib.util.find_spec("pyflink")
    if spec is not None and spec.submodule_search_locations:
        places += [str(Path(p) / "lib") for p in spec.submodule_search_locations]
    if os.environ.get("FLINK_HOME"):
        places.append(str(Path(os.environ["FLINK_HOME"]) / "lib"))
    for place in places:
        if place and any(Path(place).glob("flink-dist*.jar")):
            return Path(place)
    return None


def flink_or_say_how(given: str | None) -> Path | None:
    """Flink's lib folder, if it and a JDK are here; or None, once this has said how to get them."""
    lib = flink_lib(given)
    if lib is None:
        print(f"Flink's jars were not found: `.venv/bin/pip install apache-flink-libraries=={FLINK}` (about 240 MB; "
              "or give --flink-lib, $FLINK_LIB or $FLINK_HOME) to compare weir's Flink semantics with Flink's own "
              "window operator")
        return None
    if shutil.which("java") is None or shutil.which("javac") is None:
        print("Flink's jars are here but a JDK is not (java and javac, 11 or newer): install one to compare weir's "
              "Flink semantics with Flink's own window operator")
        return None
    return lib


def run_flink(lib: Path, cases: dict[int, dict], progress=None) -> dict[int, Outcome | str]:
    """Every case through WindowOracle in one JVM (one mini cluster, a job per case)."""
    classpath = f"{lib}/*"
    with tempfile.TemporaryDirectory(prefix="weir-flink-") as tmp:
        subprocess.run(["javac", "-nowarn", "-d", tmp, "-cp", classpath, str(ORACLE)], check=True,
                       capture_output=True, text=True)
        script = Path(tmp) / "cases.txt"
        script.write_text("\n".join(line for seed, case in cases.items() for line in case_lines(seed, case)) + "\n")
        log = Path(tmp) / "stderr.txt"  # (a file, not a pipe: Flink may log more than a pipe holds)
        with open(script) as stdin, open(log, "w") as stderr, subprocess.Popen(
                ["java", "-cp", f"{tmp}{os.pathsep}{classpath}", "WindowOracle"], stdin=stdin,
                stdout=subprocess.PIPE, stderr=stderr, text=True) as java:
            lines = []
            for line in java.stdout:
                lines.append(line)
                if progress is not None and line.startswith(("DONE ", "FAILED ")):
                    progress(int(line.split()[1]))
        error = log.read_text()
        if java.returncode != 0:
            raise RuntimeError(f"Flink's job failed (exit code {java.returncode}): "
                               + (error.strip().splitlines() or ["no message"])[-1])
    return parse_output(lines)


def first_difference(ours: Outcome, theirs: Outcome) -> str | None:
    """What differs between two outcomes, said briefly, or None."""
    if ours[1] != theirs[1]:
        return f"late side output: weir {ours[1]}, Flink {theirs[1]}"
    for window in sorted(set(ours[0]) | set(theirs[0])):
        if ours[0].get(window) != theirs[0].get(window):
            return f"window {window}: weir {ours[0].get(window)}, Flink {theirs[0].get(window)}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300, help="how many random cases")
    parser.add_argument("--seed", type=int, default=0, help="the first case's seed (the cases are seeds on from it)")
    parser.add_argument("--steps", type=int, default=8, help="the most steps (element groups, watermarks) a case has")
    parser.add_argument("--flink-lib", help="a folder holding Flink's jars (flink-dist-*.jar)")
    args = parser.parse_args(argv)
    if args.cases < 1 or args.steps < 2:  # (argparse's error: one line, exit code 2)
        parser.error(f"--cases must be at least 1 and --steps at least 2: got {args.cases} and {args.steps}")
    lib = flink_or_say_how(args.flink_lib)
    if lib is None:
        return 0
    seeds = range(args.seed, args.seed + args.cases)
    cases = {seed: make_case(seed, args.steps) for seed in seeds}
    print(f"weir's semantics = 'flink' against Flink's window operator ({lib}): {args.cases} random test "
          f"streams, seeds {seeds[0]} to {seeds[-1]}", flush=True)
    differ, ours = [], {}  # ours: weir's outcome of each case whose two paths agree
    for seed, case in cases.items():  # weir's two paths must agree whatever Flink says
        stream, batch = weir_outcome(case, batch=False), weir_outcome(case, batch=True)
        if stream == batch:
            ours[seed] = stream
        else:
            differ.append(seed)
            print(f"seed {seed}: weir's batch path differs from its stream path:\n  case {case}\n  "
                  f"{first_difference(stream, batch)}", flush=True)

    def progress(seed: int) -> None:
        done = seed - args.seed + 1
        if done % 50 == 0 or done == args.cases:
            print(f"  Flink: {done} of {args.cases} cases run", flush=True)

    try:
        theirs = run_flink(lib, cases, progress)
    except subprocess.CalledProcessError as e:  # javac refused the oracle: these jars are not Flink 1.x's
        print(f"javac could not compile {ORACLE.name} against {lib}: "
              + ((e.stderr or "").strip().splitlines() or ["no message"])[0])
        return 1
    except RuntimeError as e:
        print(e)
        return 1
    agree, failed = 0, []
    for seed, stream in ours.items():
        outcome = theirs.get(seed, "no output")
        if isinstance(outcome, str):  # (its job failed: reported, not compared)
            failed.append(seed)
            print(f"  seed {seed}: Flink's job failed: {outcome}", flush=True)
            continue
        difference = first_difference(stream, outcome)
        if difference is None:
            agree += 1
        else:
            differ.append(seed)
            print(f"seed {seed} differs: {difference}\n  case {cases[seed]}", flush=True)
    print(f"{agree:,} agree, {len(differ):,} differ, {len(failed):,} Flink failed"
          + (f"; differ: seeds {', '.join(map(str, sorted(differ)))}" if differ else ""))
    return 1 if differ or failed else 0


if __name__ == "__main__":
    sys.exit(main())
