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


def test_seeds_and_reports(pytester):
    pytester.makefile(".toml", weir_wrong=WRONG)
    result = pytester.runpytest("-p", "no:cacheprovider", "--weir-seeds", "3", "--weir-report", "out", "-v")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*wrong_claim?seed 1?*", "*wrong_claim?seed 3?*"])
    assert (Path(pytester.path) / "out" / "wrong_claim-seed2" / "report.md").exists()


def test_a_bad_file_is_one_line_at_collection(pytester):
    pytester.makefile(".toml", weir_bad='[workload]\nrecords = "many"\n')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*weir: *weir_bad.toml: workload.records: got 'many'; accepts a whole number from 1 to 10_000_000*"])
