"""Who holds a lease (a projection's, a provider job's), and whether that process is gone.

A holder is named ``host:pid:random;start=<seconds>;boot=<boot id>;ns=<pid namespace>``
(start: since boot on Linux, which a clock step does not move; else epoch seconds). The
first part is what older versions wrote (``host:pid:random``, still read). A holder of
this boot of this machine (host names repeat: ``localhost``, cloned VMs, whose first pid
namespaces all have the same number) and of this pid namespace, whose pid is gone or is
now another process (its start time differs: pids are reused, in containers soon), is
gone: its lease may be taken at once. Anything else (another machine, boot or
namespace, an older name) may be alive: its lease is waited out.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from dataclasses import dataclass

import psutil  # type: ignore[import-untyped]

# psutil gives a start time to 1/100 s; a clock step while a process runs moves it
# (boot time is in wall-clock time): within this, it is the same process.
SAME_START_SECONDS = 1.0


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    start: float | None  # None: an older name, liveness unknown
    boot: str | None  # this boot of the machine (Linux), None elsewhere: unknown
    namespace: str | None  # the pid namespace (Linux), None elsewhere


def holder_identity() -> str:
    """This process's name as a lease holder (at most 120 characters, the column's size)."""
    name = f"{this_host()}:{os.getpid()}:{uuid.uuid4().hex[:8]};start={_start_of(os.getpid()):.2f}"
    for label, value in (("boot", boot_id()), ("ns", pid_namespace())):
        if value is not None:
            name += f";{label}={value}"
    return name


def parse_holder(owner: str) -> Holder | None:
    """The holder an owner string names; None for one that is not a process's name."""
    head, *fields = owner.split(";")
    parts = head.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    extra = dict(field.partition("=")[::2] for field in fields)
    try:
        start = float(extra["start"]) if "start" in extra else None
    except ValueError:
        start = None
    return Holder(parts[0], int(parts[1]), start, extra.get("boot"), extra.get("ns"))


def holder_is_gone(owner: str) -> bool:
    """True only when sure: the holder ran here, and its process has ended."""
    holder = parse_holder(owner)
    if holder is None or holder.start is None:
        return False
    here = (this_host(), boot_id(), pid_namespace())  # (boot and ns: None off Linux)
    if (holder.host, holder.boot, holder.namespace) != here:
        return False
    try:
        process = psutil.Process(holder.pid)
        if process.status() == psutil.STATUS_ZOMBIE:  # killed, not yet reaped
            return True
        return bool(abs(_start_of(holder.pid) - holder.start) > SAME_START_SECONDS)
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # not ours to look at (hidepid): it may be alive
        return False


def this_host() -> str:
    """The host name, without the separators of a holder's name (a holder's whole
    name fits the 120 characters of its column)."""
    return socket.gethostname()[:32].replace(":", "-").replace(";", "-")


def boot_id() -> str | None:
    """This boot of this machine (Linux; containers share their host's): two machines
    that share a host name and a pid namespace number still differ here."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as found:
            return found.read().strip().replace("-", "")[:12] or None
    except OSError:
        return None


def pid_namespace() -> str | None:
    """The inode of this process's pid namespace: pids compare only within one."""
    try:
        link = os.readlink("/proc/self/ns/pid")  # pid:[4026531836]
    except OSError:
        return None
    return link.partition("[")[2].rstrip("]") or None


def _start_of(pid: int) -> float:
    """When the process started: on Linux, seconds since boot (psutil's create_time adds
    the boot time as the clock now says it, so a clock step would make a live holder look
    like another process); elsewhere psutil's."""
    if sys.platform != "linux":
        return float(psutil.Process(pid).create_time())
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()  # after the command's name
    except FileNotFoundError as gone:
        raise psutil.NoSuchProcess(pid) from gone
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start, in clock ticks
