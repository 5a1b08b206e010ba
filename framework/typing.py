"""Public type aliases for views, error handlers and middleware."""

from __future__ import annotations

import collections.abc as cabc
import typing as t

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Response as BaseResponse

    from .wrappers import Request
    from .wrappers import Response

__all__ = [
    "ErrorHandler",
    "HeadersValue",
    "ResponseBody",
    "ResponseReturnValue",
    "ViewFunction",
    "ViewMiddleware",
]

ResponseBody: t.TypeAlias = (
    "BaseResponse | str | bytes | dict[str, t.Any] | list[t.Any]"
    " | cabc.Iterable[str] | cabc.Iterable[bytes]"
)
"""A body a view may return."""

HeadersValue: t.TypeAlias = "cabc.Mapping[str, str] | cabc.Sequence[tuple[str, str]]"
"""Extra response headers in a returned tuple."""

ResponseReturnValue: t.TypeAlias = (
    "ResponseBody | tuple[ResponseBody, int | str]"
    " | tuple[ResponseBody, HeadersValue]"
    " | tuple[ResponseBody, int | str, HeadersValue]"
)
"""Anything a view may return."""

ViewFunction: t.TypeAlias = "cabc.Callable[..., ResponseReturnValue]"
"""A view: ``view(request, **url_values)``."""

ErrorHandler: t.TypeAlias = (
    "cabc.Callable[[Request | None, BaseException], ResponseReturnValue]"
)
"""An error handler: ``handler(request, exc)``."""

ViewMiddleware: t.TypeAlias = (
    "cabc.Callable[[cabc.Callable[[Request], Response]],"
    " cabc.Callable[[Request], Response]]"
)
"""A view middleware factory: ``factory(get_response) -> handler(request)``."""
