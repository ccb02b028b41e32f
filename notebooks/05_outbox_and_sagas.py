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
# # The transactional outbox, dual writes, and sagas
#
# The seed's section 1 (the transactional outbox), its pattern 3 (outbox + CDC) and its pattern 4
# (sagas with compensation), each run.
#
# Interview questions this answers:
# - *The service writes an order to its database and an event to Kafka. What can go wrong?*
# - *How does the outbox make the two writes one, and what does the relay need to be safe?*
# - *A saga fails half-way and compensates. Why must a compensation be idempotent?*

# %%
import numpy as np
from matplotlib.figure import Figure

import weir
from weir.analysis.plots import timeline
from weir.sim.patterns.saga import SERVICES  # order, payment, inventory, shipping

# %% [markdown]
# ## Dual write: two systems, no transaction across them
#
# `dual_write` commits each order to the application's database, then publishes its event. The
# producer client holds an event up to 5ms (`linger.ms`) to batch it, so there are moments when
# an order is committed and its event is only in the client's memory. The application node
# crashes three times; a crash in such a moment leaves an order no consumer will ever hear of.
# Downstream everything is fine (the log and the sink agree); the loss is between the database
# and the log, where no pipeline checker looks, so `outbox_consistent` compares the two.

# %%
dual = weir.execute(weir.load_scenario("dual_write"))
consistent = weir.check(dual, ["outbox_consistent"])[0]
print(consistent.summary)
print(f"orders in the database {len(dual.orders)}, events in the log {len(dual.source['record_id'])}")
assert not consistent.held and consistent.evidence["orders_without_event"] > 0
assert weir.check(dual, ["no_loss"])[0].held  # the pipeline lost nothing it was given
weir.show(timeline(dual))  # the application node's three crashes

# %% [markdown]
# ## The transactional outbox
#
# `outbox_cdc` writes the order and an outbox row in **one** database transaction, so both or
# neither exist. A relay tails the outbox, publishes pending events, and marks them sent once the
# broker acknowledged. A crash between the publish and the mark publishes them again after the
# restart, and the broker's idempotent producer (the relay keeps its producer id across restarts,
# as a transactional id would) drops the copies. The same three crashes: every order has its one
# event.

# %%
outbox = weir.execute(weir.load_scenario("outbox_cdc"))
for verdict in weir.check(outbox, ["outbox_consistent", "no_loss", "no_duplicates"]):
    print(f"{verdict.invariant:<18} {verdict.summary}")
    assert verdict.held

# %% [markdown]
# ## Sagas: compensation instead of a distributed transaction
#
# 400 sagas of four steps (order, payment, inventory, shipping); 30% fail at a step after the
# order and compensate what succeeded, in reverse order (refund, restock). The orchestrator logs
# each saga's state before every request and after every answer, and crashes twice mid-flight;
# after a restart it resumes each saga from its log and **sends the request in progress again**. A service that
# applied it before the crash (the answer was lost with the orchestrator) gets it twice.
#
# With idempotent services, the second request changes nothing. In
# `saga_non_idempotent_compensation`, a repeated refund or restock takes effect again.

# %%
sagas = {name: weir.execute(weir.load_scenario(name))
         for name in ("saga_compensation", "saga_non_idempotent_compensation")}
for name, run in sagas.items():
    atomic = weir.check(run, ["saga_atomic"])[0]
    print(f"{name:<34} {atomic.summary}")
broken = weir.check(sagas["saga_non_idempotent_compensation"], ["saga_atomic"])[0]
assert weir.check(sagas["saga_compensation"], ["saga_atomic"])[0].held and not broken.held

# %% [markdown]
# The ledger of the first saga left partly applied, in both runs: each step applied (up) and each
# compensation (down), per service, with the orchestrator's outages shaded. The refund was applied
# while the orchestrator was down, so the answer never reached it; after its restart it asks again.
# In the idempotent run the second request finds the refund done; in the other it refunds again.

# %%
saga_id = broken.evidence["first_partial"][0]
figure = Figure(figsize=(10, 3), layout="constrained")
for ax, (name, run) in zip(figure.subplots(1, 2, sharey=True), sagas.items()):
    ledger = run.saga
    mine = ledger["saga"] == saga_id
    for action, marker, colour, label in ((1, "^", "#4c9f70", "step applied"),
                                          (0, "v", "#d1495b", "compensation applied")):
        rows = mine & ((ledger["action"] == 1) == (action == 1))
        ax.scatter(ledger["at"][rows] / 1000, ledger["service"][rows], marker=marker, s=70, color=colour, label=label)
    for fault in weir.load_scenario(name).faults:
        if fault.node == "orchestrator":
            ax.axvspan(fault.at / 1000, (fault.at + fault.down_for) / 1000, color="#999999", alpha=0.15,
                       label="orchestrator down" if fault.at == 12_300 else None)
    ax.set_yticks(range(len(SERVICES)), SERVICES)
    ax.set_xlim(0, 45)  # the saga's life; the second outage comes later
    ax.set_title(f"{name}: saga {saga_id}", fontsize=9)
    ax.set_xlabel("simulated time (ms)")
    ax.legend(fontsize=7)
ledger = sagas["saga_non_idempotent_compensation"].saga
undone = (ledger["saga"] == saga_id) & (ledger["action"] != 1)
assert np.unique(ledger["service"][undone], return_counts=True)[1].max() == 2  # one compensation, twice
weir.show(figure)

# %% [markdown]
# ## Exercises
#
# Each exercise is a setting to change and a check that runs weir on it. Change the setting,
# run the check, until it says **passed**. A solution is hidden below each (expand it in Jupyter).
#
# **1. A design that survives a crash at any moment.** Choose `outbox.mode` (`"dual_write"` or
# `"outbox"`) and `outbox.order` (`"db_first"` or `"log_first"`: for a dual write, which system
# is written first). The check gives the database a slow 2ms write, so that each step of an
# order takes a while, and crashes the application at ten moments 1ms apart, one run each.
# Publishing first is the obvious fix to try.

# %%
@weir.exercise
def check_design(design: dict) -> weir.Answer:
    if set(design) - {"outbox.mode", "outbox.order"}:
        return weir.Answer(False, "this exercise is about outbox.mode and outbox.order only")
    scenario = (weir.load_scenario("dual_write")
                .with_settings({**design, "workload.records": 200, "outbox.db_write_time": "2ms"}).with_faults(()))
    for at in range(100_000, 110_000, 1_000):
        run = weir.execute(scenario, 1, (weir.Fault(kind="crash", node="producer", at=at, down_for="10ms"),))
        verdict = weir.check(run, ["outbox_consistent"])[0]
        if not verdict.held:
            return weir.Answer(False, f"{design}, a crash at {at / 1000:g}ms: {verdict.summary}")
    return weir.Answer(True, f"{design}: every order has its one event, wherever the crash fell")


design = {"outbox.mode": "dual_write", "outbox.order": "log_first"}  # change me

# %% tags=["check"]
check_design(design)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Publishing first only moves the gap: a crash after the publish and before the commit leaves an
# event for an order that does not exist. Only one transaction around both writes closes it.
answer = check_design({"outbox.mode": "outbox", "outbox.order": "db_first"})
assert answer
answer

# %% [markdown]
# **2. Sagas that end clean.** Change `saga_non_idempotent_compensation`'s `[saga]` settings
# until every saga ends all-committed or all-compensated, with no compensation applied twice, on
# seeds 1 to 3. Retrying less is not among the settings: the orchestrator must resend after a
# crash, since it cannot know whether the service got the request.

# %%
@weir.exercise
def check_sagas(settings: dict) -> weir.Answer:
    scenario = weir.load_scenario("saga_non_idempotent_compensation").with_settings(settings)
    return weir.Answer.held(scenario, ["saga_atomic", "no_double_compensation"], seeds=(1, 2, 3), label=str(settings))


settings = {"saga.idempotent_steps": True}  # change me

# %% tags=["check"]
check_sagas(settings)

# %% tags=["solution"] jupyter={"source_hidden": true}
# The steps were idempotent already; the compensations were not. A refund keyed by the saga (refund
# once per saga id) makes a repeated request harmless. Failing less often (saga.failure_rate) only
# hides it: fewer compensations, the same flaw.
answer = check_sagas({"saga.idempotent_compensations": True})
assert answer
answer
