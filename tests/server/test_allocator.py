"""``--malloc-arena-max``: the cap is really in force (counted by glibc's ``malloc_info``)."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wsgi2asgi.exceptions import ConfigError
from wsgi2asgi.server.config import Config

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="malloc arenas are a glibc feature"
)

# Eight threads allocate malloc-sized blocks at the same time, then glibc reports its heaps.
PROGRAM = textwrap.dedent(
    """
    import ctypes, sys, tempfile, threading
    from wsgi2asgi.server.allocator import limit_arenas

    if sys.argv[1] != "none":
        assert limit_arenas(int(sys.argv[1]))
    barrier = threading.Barrier(8)

    def work():
        barrier.wait()
        blocks = [bytearray(4096) for _ in range(2000)]
        barrier.wait()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    with tempfile.NamedTemporaryFile(suffix=".xml") as out:
        stream = libc.fopen(out.name.encode(), b"w")
        libc.malloc_info(0, ctypes.c_void_p(stream))
        libc.fclose(ctypes.c_void_p(stream))
        print(open(out.name).read().count("<heap nr="))
    """
)


def heaps(cap: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, cap],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(result.stdout)


def test_the_cap_limits_the_arenas_threads_get() -> None:
    assert heaps("none") > 2  # glibc's default: an arena per allocating thread, here
    assert heaps("2") <= 2
    assert heaps("1") == 1


def test_the_cap_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="malloc-arena-max"):
        Config(app="x:y", malloc_arena_max=0)


# Body-sized blocks allocated and freed one after the other, as pieces of a body streaming
# through the server are (#17); prints the page faults they took. "start": glibc's thresholds
# as a process starts with them (128 KiB; raised later only when some large block happens to
# be freed, which made the server's uploads bimodal).
# The module is loaded by its path, not through the package, whose imports would change the
# heap's layout between the two runs.
PIECES = textwrap.dedent(
    """
    import ctypes, importlib.util, resource, sys

    if sys.argv[1] == "start":
        mallopt = ctypes.CDLL(None).mallopt
        assert mallopt(-3, 128 * 1024) and mallopt(-1, 128 * 1024)
    else:
        spec = importlib.util.spec_from_file_location("allocator", sys.argv[2])
        allocator = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(allocator)
        assert allocator.reuse_large_blocks()
    piece = b"x" * (512 * 1024 + 1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(200):
        copy = piece[1:]  # a 512 KiB block, written
        del copy
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def page_faults(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", PIECES, mode, str(ROOT / "wsgi2asgi/server/allocator.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(result.stdout)


def test_large_blocks_are_reused_not_mapped_afresh() -> None:
    # At glibc's starting thresholds each block is a fresh mapping: 128 faults per block.
    assert page_faults("start") > 10000
    assert page_faults("reuse") < 1000
