# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Comparing the patterns: the seed's section 8, measured
#
# The seed compares its patterns in words: exactly-once processing has "higher latency (2PC
# overhead)" and "automatic" recovery; at-least-once with dedup keeps "dedup key storage"; a saga
# needs a "saga state store". Here each pattern is a built-in scenario with its scripted faults
# taken away, run under random schedules of one fault family at a time, and judged on the promise
# it makes. The comparison and decision matrices are then computed from those runs.
#
# One run per cell keeps this notebook quick (so a cell is all or nothing); raise `RUNS`, or run
# `weir matrix --runs 10` (the README shows that run), for shares.

# %%
import weir
from weir.faults.matrix import comparison, correctness_matrix, decisions, heatmap

RUNS = 1
matrix = correctness_matrix(runs=RUNS, seed=0, workers=2)
weir.show(heatmap(matrix))

# %% [markdown]
# Green cells held in every run; a red or amber cell names the claim that broke most often. Read
# it against the seed's issue 6 and its trick question 3: **committing before the sink
# acknowledges** loses data under crashes and partitions, whether the sink is idempotent or not.

# %%
held = {p: all(c.held == c.runs for (q, _k), c in matrix.cells.items() if q == p) for p in matrix.patterns}
assert held["exactly-once, upsert"] and held["exactly-once, two-phase commit"] and held["at-least-once"]
assert not held["commit before ack"] and not held["idempotent sink, commit on poll"]
for pattern in matrix.patterns:
    print(f"{pattern:<34} {'held everywhere' if held[pattern] else 'broke somewhere'}")

# %% [markdown]
# ## The comparison matrix
#
# Per pattern: how long its scenario is (a crude measure of what the design takes to state), its
# median end-to-end latency, what it keeps in order to recover, and how it fared under crashes.
# The two-phase commit's latency is the seed's "2PC overhead", measured: a row becomes visible only
# when the checkpoint after its write commits.

# %%
rows = comparison(matrix)
for row in rows:
    latency = "-" if row["p50_latency_us"] is None else f"{row['p50_latency_us'] / 1000:.0f}ms"
    print(f"{row['pattern']:<34} {row['lines']:>3} lines  p50 {latency:>6}  {row['state']}")
    print(f"{'':<34} recovery: {row['recovery']}")
by = {row["pattern"]: row for row in rows}
assert by["exactly-once, two-phase commit"]["p50_latency_us"] > by["exactly-once, upsert"]["p50_latency_us"]

# %% [markdown]
# ## The decision matrix
#
# For each of the seed's requirements, the patterns that kept that promise in every run, ordered
# by the requirement's own measure. Event sourcing, the seed's fourth column, is not simulated.

# %%
for decision in decisions(matrix):
    print(f"{decision['requirement']:<26} {'; '.join(decision['recommended']) or '-'}")
    print(f"{'':<26} ({decision['why']})")
