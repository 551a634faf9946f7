"""Which queued jobs start now, and why the others wait. Pure: no processes, no clock.

The queue starts jobs in priority order (highest first, then oldest) while there is
a free slot (``max_running``) and, when a memory budget is set, while the new job's
cap fits in what the running jobs' caps leave. The order is strict: a job that does
not fit holds back the jobs behind it, so a large job is never starved by a stream
of small ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ...common.sizes import format_size
from .job import Job, JobStatus


def queue_order(jobs: Iterable[Job]) -> list[Job]:
    """Queued jobs in the order they will start: highest priority, then oldest."""
    queued = [job for job in jobs if job.status == JobStatus.QUEUED]
    return sorted(queued, key=lambda job: (-job.options.priority, job.seq))


def _in_use(jobs: Iterable[Job]) -> list[Job]:
    return [job for job in jobs if job.status in (JobStatus.STARTING, JobStatus.RUNNING)]


@dataclass
class Plan:
    """What the scheduler decided: jobs to start now, and a reason for each one left waiting."""

    start: list[Job] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)


def plan(jobs: Iterable[Job], max_running: int, memory_budget: int = 0) -> Plan:
    """Decide which queued jobs start now.

    ``memory_budget`` is the most the caps (``job.memory_limit``) of all starting
    and running jobs may add up to; 0 means no budget.
    """
    jobs = list(jobs)
    active = _in_use(jobs)
    slots = max(0, max_running - len(active))
    used = sum(job.memory_limit or 0 for job in active)
    result = Plan()
    blocked: str | None = None
    for job in queue_order(jobs):
        if blocked is None and slots == 0:
            blocked = f"waiting for a free slot: {len(active)} of {max_running} jobs running"
        need = job.memory_limit or 0
        if blocked is None and memory_budget and used + need > memory_budget:
            blocked = (
                f"waiting for memory: {format_size(used)} of {format_size(memory_budget)} "
                f"in use, this job needs {format_size(need)}"
            )
        if blocked is not None:
            result.waiting[job.id] = blocked
            continue
        result.start.append(job)
        slots -= 1
        used += need
    return result
