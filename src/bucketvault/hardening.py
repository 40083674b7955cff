"""Process hardening at start-up: the process holds plaintext secrets, so it must not dump.

A core file (or a same-user debugger attaching to read memory) would write out KEKs,
unsealed registrations and decrypted credentials. RLIMIT_CORE = 0 stops core files;
on Linux, PR_SET_DUMPABLE = 0 also stops core dumps by a privileged handler (systemd-
coredump, apport) and ptrace by processes of the same user. Best effort: what is not
available is logged, never fatal.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import resource
import sys

log = logging.getLogger(__name__)

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name, use_errno=True) if name else None
    except OSError:
        return None


def dumpable() -> int | None:
    """PR_GET_DUMPABLE for this process (None where prctl is unavailable)."""
    libc = _libc() if sys.platform.startswith("linux") else None
    if libc is None:
        return None
    return int(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))


def forbid_core_dumps() -> bool:
    """Set RLIMIT_CORE to 0 and, on Linux, make the process non-dumpable; True if both held."""
    ok = True
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError) as exc:
        ok = False
        log.warning("could not set RLIMIT_CORE to 0: %s", exc)
    if sys.platform.startswith("linux"):
        libc = _libc()
        if libc is None or libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            ok = False
            errno = ctypes.get_errno() if libc is not None else 0
            log.warning("could not make the process non-dumpable (prctl errno %s)", errno)
    if ok:
        log.info("core dumps disabled: RLIMIT_CORE=0, dumpable=%s", dumpable())
    return ok


__all__ = ["dumpable", "forbid_core_dumps"]
