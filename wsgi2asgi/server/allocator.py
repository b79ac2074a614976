"""glibc malloc settings of a server process: ``--malloc-arena-max``, and large blocks reused.

glibc gives threads that allocate at the same time their own malloc arenas (up to eight per
core on 64-bit), and memory freed in one arena only serves later allocations in that arena.
A WSGI worker pool whose threads allocate request and response bodies therefore grows the
process's RSS in steps, one per new arena, and keeps it: the soak (``benchmarks/soak.py``)
saw Flask-only traffic grow +2.3% in steps that matched new pool threads, and flat (+0.0%)
with two arenas. Small Python objects do not use malloc arenas (pymalloc), so the cap costs
no measurable speed here (``benchmarks/RESULTS.md``). It is the setting that
``MALLOC_ARENA_MAX=2`` gives, for processes whose environment we do not control.

Large blocks: glibc serves a block above ``M_MMAP_THRESHOLD`` (128 KiB at first, raised when
such a block is freed) with a fresh ``mmap``, and gives heap memory above ``M_TRIM_THRESHOLD``
back to the kernel. Request and response bodies stream through the server in pieces of up to
256 KiB (a socket read, the parser's piece, the app's reads): each then cost a new mapping and
a page fault per 4 KiB, or not, depending on what the dynamic threshold had learned so far. The
same 1 GiB upload took 0.7 s or 2.0 s (280,000 page faults) from run to run. With the
thresholds fixed at 1 MiB and 2 MiB (what glibc's own rule sets once a 1 MiB block is freed),
every piece reuses heap memory: no page faults, and at most 2 MiB per arena kept unreturned.
:func:`reuse_large_blocks` sets them at the start of every server process.

Example::

    limit_arenas(2)         # True on glibc; False (nothing done) elsewhere
    reuse_large_blocks()    # likewise
"""

from __future__ import annotations

import ctypes
import logging
import platform
from typing import Any

__all__ = ["LARGE_BLOCK", "limit_arenas", "reuse_large_blocks"]

logger = logging.getLogger("wsgi2asgi.error")

_M_ARENA_MAX = -8  # glibc <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from malloc's heaps, reused, rather than each from a new mmap.
LARGE_BLOCK = 1024 * 1024


def limit_arenas(count: int) -> bool:
    """Ask glibc to create at most ``count`` malloc arenas from now on.

    Arenas already created stay; call it before the worker threads start. Returns whether the
    cap is in force (``False`` on a C library other than glibc, e.g. musl or macOS).
    """
    mallopt = _mallopt()
    if mallopt is None:
        logger.info("--malloc-arena-max ignored: not glibc")
        return False
    return bool(mallopt(_M_ARENA_MAX, count))


def reuse_large_blocks(size: int = LARGE_BLOCK) -> bool:
    """Have glibc serve blocks up to ``size`` bytes from its heaps, and keep up to twice that
    free in each heap rather than give it back to the kernel at once (see the module's text).

    Returns whether it is in force (``False`` on a C library other than glibc).
    """
    mallopt = _mallopt()
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, size)) and bool(mallopt(_M_TRIM_THRESHOLD, 2 * size))


def _mallopt() -> Any:
    """glibc's ``mallopt``, or ``None`` elsewhere."""
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt
