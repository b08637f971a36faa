"""What :class:`kiwi.Server`, :class:`kiwi.Cluster` and :class:`kiwi.Database` share.

Each may own a temporary data directory, made when it opens and removed when
it is released; ``with`` opens and releases it, and so does the garbage
collector for one nobody released (the directory does not outlive it).

Example::

    >>> import os
    >>> from kiwi._resource import Resource
    >>> class Scratch(Resource):
    ...     def _release(self) -> None:
    ...         self._remove_tempdir()
    >>> with Scratch() as s:
    ...     path = s._make_tempdir("kiwi-doc-")
    ...     os.path.isdir(path)
    True
    >>> os.path.exists(path)
    False
"""

from __future__ import annotations

import abc
import shutil
import tempfile
from types import TracebackType
from typing import Optional, TypeVar

_R = TypeVar("_R", bound="Resource")


class Resource(abc.ABC):
    """An owner of an optional temporary directory with ``with`` and finalizer support.

    Subclasses implement :meth:`_release` (stop or close; idempotent, and
    safe on an object whose ``__init__`` failed half way) and, when ``with``
    must start something, :meth:`_open`.
    """

    _tempdir: Optional[str] = None

    def _make_tempdir(self, prefix: str) -> str:
        """Make a fresh temporary directory that :meth:`_remove_tempdir` removes."""
        self._remove_tempdir()
        self._tempdir = tempfile.mkdtemp(prefix=prefix)
        return self._tempdir

    def _remove_tempdir(self) -> None:
        tempdir, self._tempdir = self._tempdir, None
        if tempdir is not None:
            shutil.rmtree(tempdir, ignore_errors=True)

    def _open(self: _R) -> _R:
        """What entering ``with`` does; returns the object."""
        return self

    @abc.abstractmethod
    def _release(self) -> None:
        """Stop or close, removing the temporary directory (idempotent)."""

    def __enter__(self: _R) -> _R:
        return self._open()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self._release()

    def __del__(self) -> None:
        try:
            self._release()
        except Exception:  # a finalizer must not raise (e.g. at interpreter exit)
            pass
