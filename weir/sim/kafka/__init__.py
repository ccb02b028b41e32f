"""The Kafka model: the partitioned log and its broker (offsets, idempotent and transactional
producers), the murmur2 partitioner, consumer groups, and the producers with their workload."""

from weir.sim.kafka.group import Assignment, ConsumerGroup
from weir.sim.kafka.log import Broker
from weir.sim.kafka.partitioner import partition_for
from weir.sim.kafka.producer import Producer, WorkloadData, draw_workload

__all__ = ["Assignment", "ConsumerGroup", "Broker", "partition_for", "Producer", "WorkloadData", "draw_workload"]
