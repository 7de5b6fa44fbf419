"""The name a plugin process shows in ps, top and pstree.

Forked from the zygote, every instance would show the zygote's command line
(``python -m jumpwire_pyhost zygote``), and without the zygote every instance
of a class shows the same one: an operator could not tell which process
serves which instance. Once configured, an instance names itself after its
path in the exporter's tree, as Go plugins are told apart by their binaries."""

from __future__ import annotations

import contextlib
import ctypes

PR_SET_NAME = 15  # prctl(2): the calling thread's name, at most 15 bytes
COMM_MAX = 15


def short_name(path: str) -> str:
    """The end of path that fits the kernel's 15 bytes, whole components
    first: ``lab.rack1.dut.power`` becomes ``dut.power``."""
    parts = path.split(".")
    name = parts[-1].encode()[:COMM_MAX]
    for p in reversed(parts[:-1]):
        longer = p.encode() + b"." + name
        if len(longer) > COMM_MAX:
            break
        name = longer
    return name.decode(errors="ignore")


def name_process(path: str, type_path: str) -> None:
    """Names this process after the instance it serves: its short name
    (what top and pstree show, and ps's comm column) becomes the end of
    path, and its command line (what ps -ef shows) ``jumpwire-pyhost PATH
    CLASS``, cut to the room the original command line had (the zygote's is
    short). Best effort: what the system refuses keeps its old name. Call it
    from the main thread, whose name is the process's."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NAME, short_name(path).encode(), 0, 0, 0)
    with contextlib.suppress(OSError, ValueError, IndexError):
        # The command line is the memory between arg_start and arg_end
        # (fields 48 and 49 of /proc/self/stat), which the process may
        # write through /proc/self/mem. A last byte that is not NUL tells the
        # kernel the arguments were rewritten: /proc/PID/cmdline then ends at
        # the first NUL, after the title, instead of listing the padding.
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])
        room = end - start
        cls = type_path.rpartition(".")[2]
        title = f"jumpwire-pyhost {path} {cls}".encode()[: room - 2]
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            mem.write(title + b"\0" * (room - len(title) - 1) + b" ")
