"""``--malloc-arena-max``: cap the number of glibc malloc arenas of a server process.

glibc gives threads that allocate at the same time their own malloc arenas (up to eight per
core on 64-bit), and memory freed in one arena only serves later allocations in that arena.
A WSGI worker pool whose threads allocate request and response bodies therefore grows the
process's RSS in steps, one per new arena, and keeps it: the soak (``benchmarks/soak.py``)
saw Flask-only traffic grow +2.3% in steps that matched new pool threads, and flat (+0.0%)
with two arenas. Small Python objects do not use malloc arenas (pymalloc), so the cap costs
no measurable speed here (``benchmarks/RESULTS.md``). It is the setting that
``MALLOC_ARENA_MAX=2`` gives, for processes whose environment we do not control.

Example::

    limit_arenas(2)     # True on glibc; False (nothing done) elsewhere
"""

from __future__ import annotations

import ctypes
import logging
import platform

__all__ = ["limit_arenas"]

logger = logging.getLogger("wsgi2asgi.error")

_M_ARENA_MAX = -8  # glibc <malloc.h>


def limit_arenas(count: int) -> bool:
    """Ask glibc to create at most ``count`` malloc arenas from now on.

    Arenas already created stay; call it before the worker threads start. Returns whether the
    cap is in force (``False`` on a C library other than glibc, e.g. musl or macOS).
    """
    if platform.libc_ver()[0] != "glibc":
        logger.info("--malloc-arena-max ignored: not glibc")
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, count))
