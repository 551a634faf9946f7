"""The job's side of resource limits: join the control groups the server made, lower priority.

The runner calls these first thing, in a plain subprocess and in a child of the
fork server alike: before TensorBoard, its data server or any thread starts, so
every process of the job inherits the groups and the niceness.
"""

from __future__ import annotations

import os
import time


class LimitError(Exception):
    """The job could not be placed under its limits; the text says why."""


def join_cgroups(procs_files: list[str]) -> None:
    """Move this process into each control group by writing its pid to ``cgroup.procs``."""
    pid = str(os.getpid())
    for procs_file in procs_files:
        try:
            # Unbuffered, one write: the kernel takes one pid per write() call.
            with open(procs_file, "wb", buffering=0) as file:
                file.write(pid.encode())
        except OSError as error:
            raise LimitError(
                f"could not join the control group {os.path.dirname(procs_file)}: "
                f"{error.strerror or error}"
            ) from None


def set_nice(nice: int) -> str | None:
    """Set this process's niceness, and its session's if it leads one; a note on failure.

    Children inherit both. The session's niceness matters where the kernel groups
    processes by session (autogroup, on by default in most kernels): the CPU is
    then shared between sessions first, and a process's own niceness only ranks it
    within its session, so a job in a session of its own would otherwise weigh as
    much as the user's training. Raising niceness always works; lowering it needs
    privileges, and the job then keeps the niceness it has.
    """
    notes = []
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError as error:
        current = os.getpriority(os.PRIO_PROCESS, 0)
        notes.append(f"could not set niceness {nice} ({error.strerror}); it stays {current}")
    # Only as the session's leader: the autogroup is then the job's alone, never the
    # terminal session of whoever ran the runner by hand.
    if os.getsid(0) == os.getpid():
        note = _set_autogroup_nice(nice)
        if note:
            notes.append(note)
    return "; ".join(notes) or None


def _set_autogroup_nice(nice: int) -> str | None:
    for _ in range(5):
        try:
            with open("/proc/self/autogroup", "w") as autogroup:
                autogroup.write(str(nice))
            return None
        except FileNotFoundError:
            return None  # a kernel without autogroup: process niceness is all there is
        except BlockingIOError:
            # EAGAIN: without CAP_SYS_ADMIN, one autogroup change per 0.1 s machine-wide.
            time.sleep(0.11)
        except OSError as error:
            return f"could not set the session's niceness {nice} ({error.strerror})"
    return f"could not set the session's niceness {nice} (busy)"
