"""A progress bar on stderr: tqdm when installed, else a plain counter line.

The bar never writes to stdout, whose last line is the JSON result.
"""

from __future__ import annotations

import sys
import time
from typing import Any


class _Plain:
    """The fallback bar: ``desc: n/total`` redrawn at most twice a second."""

    def __init__(self, total: int, desc: str, disable: bool) -> None:
        self.total, self.desc, self.disable, self.n = total, desc, disable, 0
        self._shown = 0.0

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if not self.disable and (now - self._shown > 0.5 or self.n >= self.total):
            self._shown = now
            sys.stderr.write(f"\r{self.desc}: {self.n}/{self.total}")
            sys.stderr.flush()

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        if not self.disable:
            sys.stderr.write("\n")
            sys.stderr.flush()

    def __enter__(self) -> _Plain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bar(total: int, desc: str, enabled: bool = True) -> Any:
    """A context-manager progress bar with ``update(n)`` and ``set_postfix_str``."""
    try:
        from tqdm import tqdm
    except ImportError:
        return _Plain(total, desc, not enabled)
    return tqdm(
        total=total,
        desc=desc,
        file=sys.stderr,
        disable=not enabled,
        leave=False,
        mininterval=0.25,
        dynamic_ncols=True,
        unit="op",
    )


def note(text: str, enabled: bool = True) -> None:
    """A line on stderr between bars (what a stage found, what was skipped)."""
    if enabled:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
