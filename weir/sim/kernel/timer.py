"""simpy's events, made and triggered without simpy's Python layers: the same events in the same
places of the queue, for less.

Every message a run sends, every timer it sets and every hand-off between two tasks is one of
these. `env.timeout(delay)` makes a Timeout through Timeout.__init__ and Environment.schedule, two
Python calls more than the event needs; `after` pushes the same entry itself. A simpy Store's put
and get go through Put and Get events, the resource's trigger loops and `_do_put`/`_do_get`;
`Inbox` keeps the same events (so the same event ids, in the same order) and drops the layers.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from typing import Any

import simpy
from simpy.events import NORMAL, PENDING, Event

__all__ = ["after", "at", "pending", "succeed", "settle", "Inbox"]

_new = object.__new__


def after(env: simpy.Environment, delay: int, callback: Callable[[Event], Any] | None = None) -> Event:
    """What `env.timeout(delay)` gives: an event that succeeds with None `delay` from now, under
    the next event id, so it goes off exactly where that Timeout would among the events due at its
    time; with `callback` among its callbacks, if given. A process may yield it as it would the
    Timeout."""
    if delay < 0:
        raise ValueError(f"a timer cannot go off in the past: delay {delay}")
    # at(env, env._now + delay, next(env._eid), callback), inlined: this runs for every message and timer
    event = _new(Event)
    event.env = env
    event.callbacks = [] if callback is None else [callback]
    event._ok = True  # (what Timeout sets: a succeeded event with value None)
    event._value = None
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), event))
    return event


def at(env: simpy.Environment, due: int, eid: int, callback: Callable[[Event], Any]) -> Event:
    """A timer that succeeds with None at time `due` under event id `eid`, one taken earlier with
    `next(env._eid)`: it goes off where a Timeout made when the id was taken would have
    (Node.unless arms its deadlines so)."""
    event = _new(Event)
    event.env = env
    event.callbacks = [callback]
    event._ok = True
    event._value = None
    heappush(env._queue, (due, NORMAL, eid, event))
    return event


def pending(env: simpy.Environment) -> Event:
    """`env.event()`: an event not yet triggered."""
    event = _new(Event)
    event.env = env
    event.callbacks = []
    event._value = PENDING
    return event


def succeed(event: Event, value: Any = None) -> None:
    """`event.succeed(value)` for an event known to be pending: scheduled now, under the next id."""
    env = event.env
    event._ok = True
    event._value = value
    heappush(env._queue, (env._now, NORMAL, next(env._eid), event))


def settle(event: Event) -> None:
    """Mark a pending event triggered (with None) without scheduling it: no event id, nothing in the
    queue, no callback runs. Only for an event that nothing waits on and that is only asked whether
    it has triggered: the `answered` of a Node.unless timeout whose end is not a message."""
    event._ok = True
    event._value = None


class Inbox:
    """An unbounded first-in, first-out queue between tasks, event for event a simpy Store, so a
    run's order and hash are the Store's.

    `put(item)` adds the item now and makes an event that succeeds now; when that is processed,
    the first waiting get is served (Store.put, and its `_trigger_get` callback). `get()` is an
    event that succeeds with the first item now, if there is one, or when a put's event brings
    one. A Store serves its first waiting get only, and so does this. A get whose process was
    interrupted stays waiting and is served in its turn, as in simpy (its item goes nowhere): a
    task's inbox belongs to one attempt, so no live task loses anything by it. (weir's Gate,
    weir/sim/stream/exchange.py, is the FilterStore's twin.)
    """

    __slots__ = ("env", "items", "get_queue")

    def __init__(self, env: simpy.Environment):
        self.env = env
        self.items: list = []
        self.get_queue: list[Event] = []

    def put(self, item: Any) -> Event:
        self.items.append(item)
        return after(self.env, 0, self._trigger_get)

    def get(self) -> Event:
        event = pending(self.env)
        self.get_queue.append(event)
        self._trigger_get(None)
        return event

    def _trigger_get(self, _put: Event | None) -> None:
        if self.get_queue and self.items:
            succeed(self.get_queue.pop(0), self.items.pop(0))
