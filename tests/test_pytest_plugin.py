"""weir's pytest plugin: weir_*.toml files are collected and run as tests."""

from __future__ import annotations

from pathlib import Path

HOLDS = '''
name = "holds"
[workload]
records = 2000
[pipeline]
mode = "exactly_once"
[checkpoint]
interval = "50ms"
[[faults]]
node = "processor"
at = "20ms"
down_for = "10ms"
[expect]
hold = ["exactly_once", "drained"]
'''

WRONG = '''
name = "wrong_claim"
[workload]
records = 4000
[pipeline]
mode = "at_least_once"
commit_interval = "50ms"
[[faults]]
node = "processor"
at = "60ms"
down_for = "20ms"
[expect]
hold = ["no_duplicates", "drained"]
'''


def test_scenario_files_pass_and_fail_as_their_expectations_say(pytester):
    pytester.makefile(".toml", weir_holds=HOLDS, weir_wrong=WRONG, not_a_weir_file="x = 1")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*wrong_claim seed 1: not as its [[]expect[]] says*",
                                 "*no_duplicates: expected to hold, violated:*",
                                 "*first bad record:*", "*replay: weir run *weir_wrong.toml --seed 1*"])
    # the printed replay replays the failing run (issue 18: every printed command is run)
    import shlex
    from weir.api import result_of
    from weir.cli import main
    # (the short summary may repeat the failure's lines: the same command each time)
    (replay,) = {line.split("replay: ", 1)[1].strip() for line in result.stdout.lines if "replay: weir run " in line}
    argv = shlex.split(replay)[1:]
    assert main(argv) == 1
    from weir.sim.scenario.loader import load_scenario
    from weir.sim.scenario.run import execute
    rerun = result_of(execute(load_scenario(argv[1]), int(argv[3])))
    assert not rerun.verdict("no_duplicates").held and not rerun.matches


def test_seeds_and_reports(pytester):
    pytester.makefile(".toml", weir_wrong=WRONG)
    result = pytester.runpytest("-p", "no:cacheprovider", "--weir-seeds", "3", "--weir-report", "out", "-v")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["weir: scenario files (weir_*.toml) on each scenario's own seed and the 2 after it",
                                 "*::wrong_claim[[]seed1[]] FAILED*", "*::wrong_claim[[]seed3[]] FAILED*"])
    assert (Path(pytester.path) / "out" / "wrong_claim-seed2" / "report.md").exists()


def test_a_bad_file_is_one_line_at_collection(pytester):
    pytester.makefile(".toml", weir_bad='[workload]\nrecords = "many"\n')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*weir: *weir_bad.toml: workload.records: got 'many'; accepts a whole number from 1 to 10_000_000*"])


def test_ids_have_no_spaces_so_k_picks_one_seed(pytester):
    pytester.makefile(".toml", weir_holds=HOLDS)
    result = pytester.runpytest("-p", "no:cacheprovider", "--weir-seeds", "3", "-k", "seed2", "-v")
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(["*::holds[[]seed2[]] PASSED*"])


def test_one_seed_forced_for_every_file_and_said_in_the_header(pytester):
    pytester.makefile(".toml", weir_holds=HOLDS)
    result = pytester.runpytest("-p", "no:cacheprovider", "--weir-seed", "7", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["weir: scenario files (weir_*.toml) on seed 7", "*::holds[[]seed7[]] PASSED*"])
    bad = pytester.runpytest("-p", "no:cacheprovider", "--weir-seed", "-1")
    bad.assert_outcomes(errors=1)
    bad.stdout.fnmatch_lines(["*weir: --weir-seed: got -1; accepts a whole number from 0 to *"])


def test_junit_xml_carries_the_seed_the_trace_hash_and_the_replay_command(pytester):
    import xml.etree.ElementTree as ET

    import weir
    pytester.makefile(".toml", weir_holds=HOLDS, weir_wrong=WRONG)
    pytester.runpytest("-p", "no:cacheprovider", "--junitxml", "junit.xml")
    cases = {c.get("name"): {p.get("name"): p.get("value") for p in c.iter("property")}
             for c in ET.parse(Path(pytester.path) / "junit.xml").getroot().iter("testcase")}
    holds = cases["holds"]
    assert holds["weir_seed"] == "1" and holds["weir_replay"].startswith("weir run ") and \
        holds["weir_replay"].endswith("weir_holds.toml --seed 1")
    expected = weir.run(weir.load_scenario(Path(pytester.path) / "weir_holds.toml"), 1).trace_sha256
    assert holds["weir_trace_sha256"] == expected and cases["wrong_claim"]["weir_seed"] == "1"
