"""Progress display for long-running helpers (bulk loads, benchmarks).

:func:`bar` returns an object with ``update(n)`` and ``close()``:

* ``tqdm.auto.tqdm`` when tqdm is importable (it renders as a widget in
  Jupyter and as a text bar in a terminal); tqdm is never required;
* otherwise :class:`LineProgress`, a single line on stderr rewritten in place
  with a carriage return (count, total and percent when the total is known,
  rate per second, elapsed time), at most ten times a second, ended by a
  newline on ``close()``;
* :class:`NoProgress` when display is off.

``enabled=None`` means automatic (:func:`should_show`): on when stderr is a
terminal or when running inside a Jupyter/IPython kernel, off otherwise (in
CI logs, pipes, pytest's captured output).
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import IO, Any, Optional, Protocol

#: Least time between two redraws of :class:`LineProgress`, in seconds.
MIN_INTERVAL = 0.1


class Progress(Protocol):
    """What :func:`bar` returns."""

    def update(self, n: int = 1) -> Any: ...

    def close(self) -> Any: ...


def in_notebook_kernel() -> bool:
    """Whether this process is a Jupyter/IPython kernel (IPython is not imported for this)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    if shell is None:
        return False
    try:
        if "IPKernelApp" in shell.config:
            return True
    except Exception:
        pass
    return type(shell).__name__ == "ZMQInteractiveShell"


def stderr_is_terminal() -> bool:
    """Whether ``sys.stderr`` is an interactive terminal."""
    stream = sys.stderr
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False


def should_show(enabled: Optional[bool]) -> bool:
    """Resolve a ``progress=`` argument: ``True``/``False`` as given, ``None`` automatic.

    Example::

        >>> should_show(True), should_show(False)
        (True, False)
    """
    if enabled is not None:
        return bool(enabled)
    return stderr_is_terminal() or in_notebook_kernel()


def format_duration(seconds: float) -> str:
    """``75.0`` -> ``'01:15'``, ``3725.0`` -> ``'1:02:05'``.

    Example::

        >>> format_duration(75.0), format_duration(3725.0)
        ('01:15', '1:02:05')
    """
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes:02d}:{secs:02d}"


class NoProgress:
    """A progress display that shows nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class LineProgress:
    """One carriage-return-updated line on a stream (stderr by default).

    Example (the line is normally rewritten in place; ``close`` ends it)::

        >>> import io
        >>> out = io.StringIO()
        >>> p = LineProgress(total=4, desc="load", unit="keys", file=out)
        >>> p.update(4)
        >>> p.close()
        >>> out.getvalue().rsplit("\\r", 1)[-1].split(" keys")[0]
        'load: 4/4 (100%)'
    """

    def __init__(
        self,
        total: Optional[int] = None,
        desc: str = "",
        unit: str = "it",
        file: Optional[IO[str]] = None,
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.count = 0
        self._file = file if file is not None else sys.stderr
        self._min_interval = min_interval
        self._start = time.monotonic()
        self._last_draw = float("-inf")
        self._width = 0
        self._closed = False
        self._draw(time.monotonic())

    def line(self, now: Optional[float] = None) -> str:
        """The text shown for the current count."""
        elapsed = max((now if now is not None else time.monotonic()) - self._start, 0.0)
        head = f"{self.desc}: " if self.desc else ""
        if self.total is not None:
            percent = 100.0 * self.count / self.total if self.total else 100.0
            done = f"{self.count:,}/{self.total:,} ({percent:.0f}%)"
        else:
            done = f"{self.count:,}"
        rate = self.count / elapsed if elapsed > 0 else 0.0
        return f"{head}{done} {self.unit}, {rate:,.0f} {self.unit}/s, {format_duration(elapsed)} elapsed"

    def _draw(self, now: float) -> None:
        text = self.line(now)
        # Pad with spaces so a shorter line wipes the end of a longer one.
        padded = text.ljust(self._width)
        self._width = len(text)
        try:
            self._file.write("\r" + padded)
            self._file.flush()
        except (OSError, ValueError):
            pass
        self._last_draw = now

    def update(self, n: int = 1) -> None:
        """Count ``n`` more done; redraw if the last redraw is old enough."""
        self.count += n
        now = time.monotonic()
        if now - self._last_draw >= self._min_interval:
            self._draw(now)

    def close(self) -> None:
        """Draw the final count and end the line (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._draw(time.monotonic())
        try:
            self._file.write("\n")
            self._file.flush()
        except (OSError, ValueError):
            pass

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


def _tqdm_class() -> Optional[Any]:
    """``tqdm.auto.tqdm`` if tqdm is installed, else ``None``."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def bar(
    total: Optional[int] = None,
    *,
    enabled: Optional[bool] = None,
    desc: str = "",
    unit: str = "it",
) -> Progress:
    """A progress display for ``total`` units (unknown if ``None``).

    ``enabled``: ``True``/``False`` force it on or off, ``None`` decides with
    :func:`should_show`. tqdm is used when importable, else :class:`LineProgress`.

    Example::

        >>> p = bar(10, enabled=False)
        >>> p.update(10)
        >>> p.close()
    """
    if not should_show(enabled):
        return NoProgress()
    tqdm = _tqdm_class()
    if tqdm is not None:
        shown: Progress = tqdm(total=total, desc=desc or None, unit=unit, file=sys.stderr, mininterval=MIN_INTERVAL)
        return shown
    return LineProgress(total=total, desc=desc, unit=unit)


def total_of(items: Any) -> Optional[int]:
    """``len(items)`` when it has one, else ``None`` (generators, iterators).

    Example::

        >>> total_of([1, 2, 3]), total_of(x for x in [])
        (3, None)
    """
    try:
        return len(items)
    except TypeError:
        return None
