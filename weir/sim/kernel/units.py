"""Simulated time is integer microseconds. Durations in scenarios may be written with units."""

from __future__ import annotations

import math
import numbers
import re
from decimal import Decimal, InvalidOperation

__all__ = ["US", "MS", "S", "parse_duration", "format_duration", "DURATION_FORMS", "SIGNED_DURATION_FORMS", "DURATION_PATTERN", "parse_rate", "RATE_FORMS",
           "RATE_PATTERN",
           "micros", "millis", "seconds", "minutes"]

US = 1
MS = 1_000
S = 1_000_000


def _whole(amount: int | float, unit: int, name: str) -> int:
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise TypeError(f"{name} takes a number; got {amount!r}")
    if not math.isfinite(amount):
        raise ValueError(f"{name} takes a finite number; got {amount!r}")
    us = Decimal(str(amount)) * unit
    if us != us.to_integral_value():
        raise ValueError(f"{name}({amount!r}) is {us}us: time is a whole number of microseconds")
    return int(us)


def micros(n: int) -> int:
    """`n` microseconds (weir's unit of time), for tests: `advance_watermark_to(seconds(10))`."""
    return _whole(n, US, "micros")


def millis(n: int | float) -> int:
    """`n` milliseconds in microseconds."""
    return _whole(n, MS, "millis")


def seconds(n: int | float) -> int:
    """`n` seconds in microseconds."""
    return _whole(n, S, "seconds")


def minutes(n: int | float) -> int:
    """`n` minutes in microseconds."""
    return _whole(n, 60 * S, "minutes")

_UNITS = {"us": US, "ms": MS, "s": S, "min": 60 * S, "h": 3600 * S}
_PATTERN = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(us|ms|s|min|h)\s*$")
#: A duration string, as a regular expression (the scenario JSON Schema's pattern).
DURATION_PATTERN = _PATTERN.pattern
DURATION_FORMS = "a whole number of microseconds >= 0, or a string like '250us', '15ms', '1.5s', '2min', '1h'"
SIGNED_DURATION_FORMS = "a whole number of microseconds (negative too), or a string like '250us', '-15ms', '1.5s', '2min', '-1h'"


def parse_duration(value: object) -> int:
    """Return `value` as whole microseconds; raise ValueError when it is not a valid duration."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError(value)
        return value
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match:
            try:
                amount = Decimal(match.group(1)) * _UNITS[match.group(2)]
            except InvalidOperation:  # pragma: no cover - the pattern admits only digits
                raise ValueError(value) from None
            if amount == amount.to_integral_value():
                return int(amount)
    raise ValueError(value)


def format_duration(us: int) -> str:
    """Microseconds as seconds with millisecond precision, or finer when needed: '12.000s'."""
    if us % MS == 0:
        return f"{us / S:.3f}s"
    return f"{us / S:.6f}s"


_RATE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(B|KB|MB|GB)/s\s*$")
#: A rate string, as a regular expression.
RATE_PATTERN = _RATE.pattern
_RATE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9}
RATE_FORMS = "a whole number of bytes per second > 0, or a string like '500KB/s', '50MB/s', '1.5GB/s'"


def parse_rate(value: object) -> int:
    """Return `value` as whole bytes per second (> 0); raise ValueError when it is not a valid rate."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str):
        match = _RATE.match(value)
        if match:
            rate = Decimal(match.group(1)) * _RATE_UNITS[match.group(2)]
            if rate == rate.to_integral_value() and rate > 0:
                return int(rate)
    raise ValueError(value)
