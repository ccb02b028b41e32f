"""The nodes of a run, by name: the pipeline's, extra producers and source subtasks, a saga's."""

from __future__ import annotations

from weir.sim.stream.job import JOB_NODES

__all__ = ["NODES", "JOB_NODES", "EXTRA_NODE_KINDS", "SAGA_NODES", "NODE_FORMS", "is_node_name", "node_names", "source_subtask"]

#: The nodes of the pipeline, in trace order. The job's tasks run on source, processor, sink and
#: coordinator; a crash of any of them fails the whole job over (Flink's full restart strategy).
NODES = ("producer", "broker") + JOB_NODES
#: Extra nodes, when there are several producers or source subtasks: `producer-i` runs producer
#: instance i and `source-i` source subtask i (i >= 1; instance 0 and subtask 0 keep `producer`
#: and `source`).
EXTRA_NODE_KINDS = ("producer", "source")
#: The nodes of a `[saga]` scenario, beside NODES: the orchestrator and its four services.
SAGA_NODES = ("orchestrator", "order", "payment", "inventory", "shipping")
NODE_FORMS = (", ".join(NODES) + ", producer-N, source-N (N >= 1); with [saga]: orchestrator, order, payment, "
              "inventory, shipping")


def is_node_name(name) -> bool:
    """Whether `name` can name a node in some scenario (NODES, or an extra producer or source)."""
    if not isinstance(name, str):
        return False
    if name in NODES or name in SAGA_NODES:
        return True
    kind, _, number = name.partition("-")
    return kind in EXTRA_NODE_KINDS and number.isdigit() and number[0] != "0"


def node_names(producers: int = 1, sources: int = 1, saga: bool = False) -> tuple[str, ...]:
    """The nodes of a run, in trace order: NODES, extra producers, extra source subtasks, saga nodes."""
    return (NODES + tuple(f"producer-{i}" for i in range(1, producers))
            + tuple(f"source-{i}" for i in range(1, sources)) + (SAGA_NODES if saga else ()))


def source_subtask(name: str) -> int | None:
    """The source subtask that node `name` runs (`source`: 0, `source-i`: i), or None: another node."""
    if name == "source":
        return 0
    kind, _, number = name.partition("-")
    return int(number) if kind == "source" and number.isdigit() else None
