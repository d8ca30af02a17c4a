"""Apply the unit's seccomp settings to a command, the way systemd does, without systemd.

systemd builds its filters with libseccomp from ``SystemCallFilter=``, ``SystemCallErrorNumber=``,
``MemoryDenyWriteExecute=`` and ``RestrictAddressFamilies=``; this module builds the same filters
with the same library (through ctypes) so that tests can run the real runtime stack under them.
Run as ``python seccomp.py SPEC.json COMMAND...``: loads the filters, then execs COMMAND.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

# libseccomp constants (seccomp.h)
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_EQ = 4
SCMP_CMP_MASKED_EQ = 7
PROT_WRITE, PROT_EXEC = 0x2, 0x4
SHM_EXEC = 0o100000


def scmp_act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def libseccomp() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("seccomp")
    for candidate in [name, "libseccomp.so.2"]:
        if candidate:
            try:
                return ctypes.CDLL(candidate, use_errno=True)
            except OSError:
                continue
    return None


def unit_settings(path: Path) -> dict[str, list[str]]:
    """``Key=value`` assignments of a unit file, in order (repeated keys accumulate)."""
    settings: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def expand(group: str, cache: dict[str, set[str]] | None = None) -> set[str]:
    """System call names of a ``@group``, recursively, as this machine's systemd defines it."""
    cache = {} if cache is None else cache
    if group in cache:
        return cache[group]
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter", group], capture_output=True, text=True, check=True
    ).stdout
    names: set[str] = set()
    for line in out.splitlines()[1:]:
        line = line.strip()
        if line and not line.startswith("#"):
            names |= expand(line, cache) if line.startswith("@") else {line}
    cache[group] = names
    return names


def filter_spec(unit: Path) -> dict:
    """The seccomp-related settings of ``unit`` as plain data for :func:`load_and_exec`."""
    settings = unit_settings(unit)
    allowed: set[str] | None = None
    cache: dict[str, set[str]] = {}
    for value in settings.get("SystemCallFilter", []):
        deny = value.startswith("~")
        names: set[str] = set()
        for item in value.lstrip("~").split():
            names |= expand(item, cache) if item.startswith("@") else {item}
        if allowed is None:
            if deny:
                raise ValueError("a deny-list SystemCallFilter= first is not modelled here")
            allowed = names
        else:
            allowed = allowed - names if deny else allowed | names
    families = []
    for value in settings.get("RestrictAddressFamilies", []):
        families += value.split()
    errno_name = (settings.get("SystemCallErrorNumber") or ["EPERM"])[-1]
    return {
        "allowed": sorted(allowed or []),
        "errno": getattr(errno, errno_name),
        "mdwe": (settings.get("MemoryDenyWriteExecute") or ["no"])[-1] in ("yes", "true", "1", "on"),
        "families": [getattr(socket, name) for name in families],
    }


def _rule(lib: ctypes.CDLL, ctx: int, action: int, nr: int, *cmps: ArgCmp) -> None:
    fn = lib.seccomp_rule_add
    fn.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint] + [ArgCmp] * len(cmps)
    rc = fn(ctx, action, nr, len(cmps), *cmps)
    if rc != 0:
        raise OSError(-rc, f"seccomp_rule_add({nr})")


def load_and_exec(spec: dict, argv: list[str]) -> None:
    lib = libseccomp()
    if lib is None:
        raise SystemExit("libseccomp not found")
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]

    def nr(name: str) -> int:
        return lib.seccomp_syscall_resolve_name(name.encode())

    eperm = scmp_act_errno(errno.EPERM)
    # The allow list goes last: once loaded, seccomp() itself may no longer be allowed.
    extra = lib.seccomp_init(SCMP_ACT_ALLOW)
    if spec["mdwe"]:
        _rule(
            lib, extra, eperm, nr("mmap"), ArgCmp(2, SCMP_CMP_MASKED_EQ, PROT_WRITE | PROT_EXEC, PROT_WRITE | PROT_EXEC)
        )
        for name in ("mprotect", "pkey_mprotect"):
            _rule(lib, extra, eperm, nr(name), ArgCmp(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC))
        _rule(lib, extra, eperm, nr("shmat"), ArgCmp(2, SCMP_CMP_MASKED_EQ, SHM_EXEC, SHM_EXEC))
    if spec["families"]:
        for family in range(1, 46):
            if family not in spec["families"]:
                _rule(lib, extra, scmp_act_errno(errno.EAFNOSUPPORT), nr("socket"), ArgCmp(0, SCMP_CMP_EQ, family, 0))
    if lib.seccomp_load(extra) != 0:
        raise SystemExit("seccomp_load failed (extra filters)")
    if spec["allowed"]:
        allow = lib.seccomp_init(scmp_act_errno(spec["errno"]))
        for name in spec["allowed"]:
            number = nr(name)
            if number >= 0:  # names of other architectures resolve to an error
                _rule(lib, allow, SCMP_ACT_ALLOW, number)
        if lib.seccomp_load(allow) != 0:
            raise SystemExit("seccomp_load failed (allow list)")
    os.execv(argv[0], argv)


if __name__ == "__main__":
    load_and_exec(json.loads(Path(sys.argv[1]).read_text()), sys.argv[2:])
