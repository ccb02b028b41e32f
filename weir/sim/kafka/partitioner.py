"""Kafka's default keyed partitioner: murmur2 of the key's bytes, made positive, mod partitions.

`partition = (murmur2(key_bytes) & 0x7fffffff) % partitions`, as the Java client's
`BuiltInPartitioner.partitionForKey` does. weir's keys are int64s, serialized as Kafka's
`LongSerializer` does (8 bytes, big-endian), so a key lands in the partition a Java producer would
put it in. `murmur2` is the byte-level reference; `partition_for` does the same over a numpy array.
"""

from __future__ import annotations

import numpy as np

__all__ = ["murmur2", "partition_for"]

_SEED, _M, _R = 0x9747B28C, 0x5BD1E995, 24
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's `Utils.murmur2`, as a signed 32-bit int (what Java returns)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    for i in range(length // 4):
        k = int.from_bytes(data[4 * i: 4 * i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> _R
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    tail = data[length & ~3:]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h >= 1 << 31 else h


#: Keys below this are looked up in a table of their partitions (_table), when there are many of them
_TABLE_KEYS = 1 << 18
#: At most this many keys are hashed one by one in Python (_partition_of): numpy's dozen calls over
#: the batch cost some 40 to 80 us however few keys it holds, a key in Python 3 to 5 us
_FEW_KEYS = 8


def partition_for(keys: np.ndarray, partitions: int) -> np.ndarray:
    """The partition of each int64 key: murmur2 over its 8 big-endian bytes, positive, mod partitions.

    Many keys from a small key space (weir's workloads draw keys 0 .. workload.keys - 1) are looked
    up in a table of each key's partition, computed once: the same numbers, a tenth of the time."""
    keys = np.asarray(keys, dtype=np.int64)
    n = len(keys)
    if n <= _FEW_KEYS:  # (one record at a time: an outbox relay's, a saga's, a batch of one)
        return np.array([_partition_of(k, partitions) for k in keys.tolist()], dtype=np.int64)
    low, high = int(keys.min()), int(keys.max())
    if low >= 0 and high < _TABLE_KEYS:
        table = _tables.get(partitions)
        if table is None or high >= len(table):  # (a run builds one for its workload's keys)
            if high >= 4 * n:  # a table no bigger than a few times the keys it serves now
                return _murmur_partitions(keys, partitions)
            table = _table(partitions, 1 << max(high, 1).bit_length())
        return table[keys].astype(np.int64)
    return _murmur_partitions(keys, partitions)


#: The largest table built for each partition count: it serves every batch whose keys it covers,
#: a batch of 9 to 63 keys too (a lookup, some 6 us, where numpy's hashing costs 40 to 80 us).
_tables: dict[int, np.ndarray] = {}


def _table(partitions: int, size: int) -> np.ndarray:
    """The partition of each key 0 .. size - 1 (read-only: it is shared; at most 512 KiB), kept as
    the count's table (it is built only when bigger than the one kept, which it covers)."""
    table = _murmur_partitions(np.arange(size, dtype=np.int64), partitions)
    if partitions <= np.iinfo(np.int16).max:
        table = table.astype(np.int16)
    table.flags.writeable = False
    if partitions not in _tables and len(_tables) >= 16:
        _tables.clear()  # (a bound on what is kept: a table is built again when asked for)
    _tables[partitions] = table
    return table


def _partition_of(key: int, partitions: int) -> int:
    """The partition of one int64 key: `murmur2` of its 8 big-endian bytes, unrolled for 8 bytes
    (two 4-byte words read little-endian, no tail), made positive, mod partitions."""
    data = (key & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")
    h = _SEED ^ 8
    for k in (int.from_bytes(data[:4], "little"), int.from_bytes(data[4:], "little")):
        k = (k * _M) & _MASK
        k ^= k >> _R
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


def _murmur_partitions(keys: np.ndarray, partitions: int) -> np.ndarray:
    chunks = np.ascontiguousarray(keys.astype(">i8")).view("<u4").reshape(-1, 2)
    m = np.uint32(_M)
    h = np.full(len(keys), (_SEED ^ 8) & _MASK, dtype=np.uint32)
    with np.errstate(over="ignore"):
        for i in range(2):
            k = chunks[:, i] * m
            k ^= k >> np.uint32(_R)
            k *= m
            h *= m
            h ^= k
        h ^= h >> np.uint32(13)
        h *= m
        h ^= h >> np.uint32(15)
    return ((h & np.uint32(0x7FFFFFFF)) % np.uint32(partitions)).astype(np.int64)
