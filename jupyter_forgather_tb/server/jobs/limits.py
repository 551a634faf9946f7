"""Each job's memory and CPU limits: the machine's mechanism, the job's group, its usage.

The mechanism is chosen once (:func:`~..host.cgroups.detect`): a control group per job where
the kernel lets us make one (the cap is then enforced by the kernel, on every process
of the job), else the watchdog here, which samples the job's memory about once a second
and ends the job above its cap. Usage is sampled the same way for every job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..host.cgroups import CgroupError, Enforcer, JobCgroup, detect
from ..host.usage import JobTarget, UsageSampler, limit_error, over_limit
from .job import Job
from .live import JobLive

#: Seconds between two samples of the jobs' memory and CPU (the watchdog's period).
USAGE_INTERVAL = 1.0


class JobLimits:
    """Creates, samples and removes the limits of the jobs of one server."""

    def __init__(self, mechanism: str, log: logging.Logger):
        self.log = log
        self.enforcer: Enforcer = detect(mechanism)
        self._sampler = UsageSampler()
        self._groups: dict[str, JobCgroup] = {}
        self._over: dict[str, str] = {}  # job id -> why the watchdog ended it
        # One thread: rounds never overlap, and never wait behind launches or scans.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="forgather-tb-usage")
        how = self.enforcer.enforced_by
        if self.enforcer.reason:
            how += f" ({self.enforcer.reason})"
        log.info("TensorBoard jobs' memory limits are enforced by %s", how)

    def prepare(self, job: Job) -> dict[str, Any]:
        """Make a starting job's group; the ``build_argv`` arguments that put it there."""
        job.enforced_by = self.enforcer.enforced_by
        group = None
        try:
            group = self.enforcer.create(
                job.id,
                job.memory_limit,
                job.cpu_limit if self.enforcer.limits_cpu else None,
                job.cpu_nice,
            )
        except CgroupError as error:
            self.log.warning(
                "TensorBoard job %s: no control group (%s); the watchdog limits it", job.id, error
            )
            job.enforced_by = "watchdog"
        if not self.enforcer.limits_cpu:
            job.cpu_limit = None
        if group is not None:
            self._groups[job.id] = group
            job.cgroup_files = list(group.join_files)
        return self.argv(job)

    @staticmethod
    def argv(job: Job) -> dict[str, Any]:
        """The ``build_argv`` arguments (``JobArgs`` fields) for a job's group and niceness."""
        return {"join_cgroups": tuple(job.cgroup_files or ()), "nice": job.cpu_nice}

    def adopt(self, job: Job) -> None:
        """Find the group of a job re-adopted after a restart, if it still has one."""
        group = self.enforcer.find(job.id)
        if group is not None:
            self._groups[job.id] = group

    def sample(self, jobs: Iterable[tuple[Job, JobLive]]) -> list[tuple[Job, str]]:
        """One usage round (in the usage thread): set each ``live.usage``; jobs to end, and why.

        A job goes on the list when the watchdog finds it over its cap, or when the
        kernel's OOM killer ended a process of its group (the rest must go too).
        """
        jobs = [(job, live) for job, live in jobs if job.pid]
        targets = {}
        for job, _ in jobs:
            assert job.pid is not None
            group = self._groups.get(job.id)
            watched = job.enforced_by == "watchdog"
            targets[job.id] = JobTarget(
                session=job.pid,
                procs_file=group.join_files[0] if group else None,
                memory_cap=job.memory_limit if watched else None,
            )
        samples = self._sampler.sample(targets)
        to_end = []
        for job, live in jobs:
            sample = samples.get(job.id)
            if sample is None:
                continue
            live.usage = sample.to_json()
            group = self._groups.get(job.id)
            if job.enforced_by == "watchdog" and job.memory_limit is not None:
                if over_limit(sample, job.memory_limit) and job.id not in self._over:
                    peak = max(sample.peak_bytes, sample.pss_bytes or 0)
                    why = limit_error(job.memory_limit, peak)
                    self._over[job.id] = f"{why}; ended by the watchdog"
                    to_end.append((job, self._over[job.id]))
            elif group is not None and group.oom_kills() and job.memory_limit is not None:
                group.kill()
        self.enforcer.sweep()
        return to_end

    async def watch(
        self,
        sampled: Callable[[], list[tuple[Job, JobLive]]],
        end: Callable[[Job], None],
        log: logging.Logger,
    ) -> None:
        """Sample live jobs' usage about once a second; ``end`` those over their memory cap."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(USAGE_INTERVAL)
            jobs = sampled()
            if not jobs:
                continue
            try:
                over = await loop.run_in_executor(self._executor, self.sample, jobs)
            except Exception:  # a bad reading must not stop the watch
                log.exception("Sampling TensorBoard jobs' usage failed")
                continue
            for job, why in over:
                log.warning("TensorBoard job %s: %s; ending it", job.id, why)
                end(job)

    def ended(self, job: Job) -> str | None:
        """Release an ended job's group; why it ended if it went over its memory limit."""
        why = self._over.pop(job.id, None)
        group = self._groups.pop(job.id, None)
        if group is not None:
            if why is None and job.memory_limit is not None and group.oom_kills():
                why = limit_error(job.memory_limit, group.peak_bytes())
                why += "; the kernel's OOM killer ended it in its control group"
            group.kill()
            self.enforcer.release(group)
        return why

    def close(self) -> None:
        """On shutdown: remove every group and stop the usage thread."""
        self._executor.shutdown(wait=False)
        self.enforcer.cleanup()
