"""Static files (stylesheets, icons, scripts) served by the app itself.

``App(__name__, static_folder="static")`` adds the route
``/static/<path:filename>`` (endpoint ``static``), answered by werkzeug's
:func:`~werkzeug.utils.send_from_directory`: safe paths only (a 404 for
anything outside the folder), ``ETag`` and ``Last-Modified`` with ``304 Not
Modified`` answers, ranges, and ``sendfile`` through the server's
``wsgi.file_wrapper``.

Caching: :meth:`StaticFiles.url` (``static_url()`` in templates) returns
``/static/style.css?v=<hash>``, naming the file's content. A request whose
``v`` matches the current content is cached for a year (``Cache-Control:
public, max-age=31536000, immutable``): a new version of the file gets a new
URL. Any other request gets ``max-age`` ``STATIC_MAX_AGE`` (an hour) and is
revalidated with its ``ETag`` after that. Behind a web server or CDN that
serves the folder itself, nothing changes but who answers.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import typing as t

from werkzeug.security import safe_join
from werkzeug.utils import send_from_directory

from .conf import settings

if t.TYPE_CHECKING:
    from .wrappers import Request
    from .wrappers import Response

__all__ = ["IMMUTABLE_MAX_AGE", "StaticFiles"]

IMMUTABLE_MAX_AGE: t.Final = 31_536_000
"""Seconds a versioned static URL is cached (a year)."""


class StaticFiles:
    """The static files of one app: the view answering them and their URLs.

    :param folder: the directory holding the files.
    :param url_path: the URL prefix, such as ``"/static"``.
    :param response_class: the class of the responses.
    """

    def __init__(
        self, folder: str, url_path: str, response_class: type[Response]
    ) -> None:
        self.folder = folder
        """The directory holding the files."""
        self.url_path = url_path.rstrip("/")
        """The URL prefix, without a trailing slash."""
        self.response_class = response_class
        self._versions: dict[str, tuple[int, int, str]] = {}
        self._lock = threading.Lock()

    def version(self, filename: str) -> str | None:
        """Return a short hash of ``filename``'s content, or ``None`` if missing.

        Cached while the file's size and modification time stay the same.
        """
        path = safe_join(self.folder, filename)
        if path is None:
            return None
        try:
            info = os.stat(path)
        except (OSError, ValueError):  # ValueError: a NUL in the name
            return None
        if not stat.S_ISREG(info.st_mode):  # a directory is no file to serve
            return None
        cached = self._versions.get(filename)
        if cached is not None and cached[:2] == (info.st_mtime_ns, info.st_size):
            return cached[2]
        digest = hashlib.sha256()
        with open(path, "rb") as file:
            for chunk in iter(lambda: file.read(65536), b""):
                digest.update(chunk)
        version = digest.hexdigest()[:12]
        with self._lock:
            self._versions[filename] = (info.st_mtime_ns, info.st_size, version)
        return version

    def url(self, filename: str) -> str:
        """Return the URL of ``filename``, versioned by its content.

        :raises FileNotFoundError: no such file in the folder (a typo in a
            template shows at once, not as a 404 in the browser).
        """
        version = self.version(filename)
        if version is None:
            raise FileNotFoundError(
                f"No static file {filename!r} in {self.folder}; static_url() names"
                " a file of the app's static folder."
            )
        return f"{self.url_path}/{filename}?v={version}"

    def view(self, request: Request, filename: str) -> Response:
        """Answer ``GET /static/<filename>``.

        :raises NotFound: no such file, or a path outside the folder.
        """
        wanted = request.args.get("v")
        immutable = wanted is not None and wanted == self.version(filename)
        max_age = IMMUTABLE_MAX_AGE if immutable else int(settings.STATIC_MAX_AGE)
        response = send_from_directory(
            self.folder,
            filename,
            request.environ,
            max_age=max_age,
            response_class=self.response_class,
        )
        if immutable:
            response.cache_control.immutable = True
        return t.cast("Response", response)
