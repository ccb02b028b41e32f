"""The streaming runtime, after Flink's: the job and its source, stream and sink tasks, the keyed
exchange, checkpoints and their coordinator, operators, windows, watermarks, and the bases a user
subclasses (functions.py)."""

from weir.sim.stream.checkpoint import Checkpoint, CheckpointStore
from weir.sim.stream.functions import Operator, Sink, Source, WatermarkStrategy
from weir.sim.stream.job import JOB_NODES, Job

__all__ = ["Checkpoint", "CheckpointStore", "Operator", "Sink", "Source", "WatermarkStrategy", "JOB_NODES", "Job"]
