"""Process tuning for the race against `docker run`: CPU priority and garbage collection pauses.

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
