"""Process tuning for the race against `docker run`: CPU priority and garbage collection pauses; and room for
a connection per engine request in flight (open files).

Prevention has a millisecond or two between the engine's create event and the client's start request. On a
busy host the enforcer's threads then wait for a CPU behind the engine and the client: on the prevention
benchmark's debug-log runs, nice -10 took the violators that ran from 7-14 of 40 to 4. Freezing the objects
loaded at startup keeps every later collection small; with it as well the runs gave 1-7 of 40, though no lost
race was seen to coincide with a collection.
"""

from __future__ import annotations

import gc
import logging
import os
import resource
from pathlib import Path

log = logging.getLogger("enforcer.tuning")
TASKS = Path("/proc/self/task")


def set_niceness(nice: int) -> str | None:
    """Give every thread of this process the CPU priority `nice` (-20 first .. 19 last), as nice(1) does.

    Threads started later inherit it. Returns None on success, else why it was not applied (raising the
    priority takes CAP_SYS_NICE, or an RLIMIT_NICE of at least 20 - nice for a user without it); the
    process then keeps running at the priority it had.
    """
    threads = [int(tid) for tid in os.listdir(TASKS)] if TASKS.is_dir() else [0]
    try:
        for tid in threads:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def apply_niceness(nice: int | None) -> None:
    """NICE, with a log line saying what it did or what to fix."""
    if nice is None:
        return
    # Already there (systemd's Nice=): nothing to ask for, which a unit that denies @resources would refuse.
    problem = None if os.getpriority(os.PRIO_PROCESS, 0) == nice else set_niceness(nice)
    if problem is None:
        log.info("running at nice %d (NICE)", nice)
        return
    log.warning(
        "NICE=%d not applied (%s): a higher priority needs an RLIMIT_NICE of %d (docker run: `--ulimit "
        "nice=%d`; compose: `ulimits: {nice: %d}`) or CAP_SYS_NICE; systemd: set Nice= in the unit instead; "
        "running at nice %d",
        nice, problem, 20 - nice, 20 - nice, 20 - nice, os.getpriority(os.PRIO_PROCESS, 0),
    )  # fmt: skip


def freeze_startup_objects() -> None:
    """Move everything alive now (modules, the rules, the clients) out of the collector's sight.

    Later collections then scan only what the checks allocate, which keeps their pauses short.
    """
    gc.collect()
    gc.freeze()


# Files open besides the engine connections of the pools: the event stream, the API's, the store, logs.
OTHER_FILES = 128


def open_files_for(connections: int) -> None:
    """Raise the soft limit of open files to the hard one, as Go programs (dockerd among them) do, when
    `connections` (one per engine request in flight: ENGINE_CONCURRENCY per pool) and the rest would not fit;
    a warning names the fix when even the hard limit is too low."""
    needed = connections + OTHER_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    except (ValueError, OSError) as exc:
        log.debug("could not raise the open files limit: %s", exc)
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning(
            "open files are limited to %d, fewer than the %d that ENGINE_CONCURRENCY may need: lower it, or "
            "raise the limit (docker run: `--ulimit nofile=%d`; systemd: LimitNOFILE=%d)",
            soft, needed, needed, needed,
        )  # fmt: skip
