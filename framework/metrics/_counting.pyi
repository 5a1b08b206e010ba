"""The request counters' receivers, compiled (``_counting.c``)."""

import collections.abc as cabc
import typing as t

def configure(
    started: int,
    exception: int,
    duration: int,
    maximum: int,
    buckets: int,
    bounds: cabc.Sequence[float],
    max_seconds: float,
    opener: cabc.Callable[[], object],
) -> None: ...
def use(slots: memoryview | None, /) -> None: ...
def request_started(*args: t.Any, **kwargs: t.Any) -> None: ...
def request_finished(*args: t.Any, **kwargs: t.Any) -> None: ...
def got_request_exception(*args: t.Any, **kwargs: t.Any) -> None: ...
