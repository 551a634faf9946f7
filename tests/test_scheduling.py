"""The queue's decisions on their own: slots, priorities and the memory budget (pure)."""

from __future__ import annotations

from jupyter_forgather_tb.common.options import LaunchOptions
from jupyter_forgather_tb.server.jobs.job import Job, JobStatus
from jupyter_forgather_tb.server.jobs.scheduling import plan, queue_order

GIB = 1 << 30


def job(seq: int, status=JobStatus.QUEUED, priority: int = 0, memory: int | None = None) -> Job:
    options = LaunchOptions(logdir=f"/logs/{seq}", window_title=str(seq), priority=priority)
    return Job(options=options, url="", seq=seq, status=status, memory_limit=memory)


def test_queue_order_is_priority_then_age():
    jobs = [job(1), job(2, priority=5), job(3, priority=5), job(4, JobStatus.RUNNING)]
    assert [j.seq for j in queue_order(jobs)] == [2, 3, 1]


def test_free_slots_start_the_first_queued_jobs_and_the_rest_say_why_they_wait():
    jobs = [job(1, JobStatus.RUNNING), job(2), job(3), job(4)]
    decided = plan(jobs, max_running=3)
    assert [j.seq for j in decided.start] == [2, 3]
    assert decided.waiting == {jobs[3].id: "waiting for a free slot: 1 of 3 jobs running"}


def test_no_budget_ignores_caps():
    jobs = [job(1, memory=100 * GIB), job(2, memory=100 * GIB)]
    assert [j.seq for j in plan(jobs, max_running=4).start] == [1, 2]


def test_a_job_that_does_not_fit_the_budget_waits_and_says_how_much_is_in_use():
    jobs = [job(1, JobStatus.RUNNING, memory=3 * GIB + GIB // 2), job(2, memory=GIB)]
    decided = plan(jobs, max_running=4, memory_budget=4 * GIB)
    assert decided.start == []
    assert decided.waiting[jobs[1].id] == (
        "waiting for memory: 3.5 GiB of 4 GiB in use, this job needs 1 GiB"
    )


def test_the_budget_counts_starting_jobs_and_jobs_started_in_the_same_round():
    jobs = [job(1, JobStatus.STARTING, memory=GIB), job(2, memory=2 * GIB), job(3, memory=2 * GIB)]
    decided = plan(jobs, max_running=4, memory_budget=4 * GIB)
    assert [j.seq for j in decided.start] == [2]
    assert decided.waiting[jobs[2].id].startswith("waiting for memory: 3 GiB of 4 GiB in use")


def test_a_blocked_job_holds_back_smaller_ones_behind_it():
    big, small = job(2, priority=1, memory=3 * GIB), job(3, memory=GIB // 2)
    jobs = [job(1, JobStatus.RUNNING, memory=2 * GIB), big, small]
    decided = plan(jobs, max_running=4, memory_budget=4 * GIB)
    assert decided.start == []
    assert set(decided.waiting) == {big.id, small.id}


def test_memory_freed_by_an_ended_job_lets_the_next_one_start():
    first = job(1, JobStatus.RUNNING, memory=3 * GIB)
    second = job(2, memory=3 * GIB)
    assert plan([first, second], max_running=4, memory_budget=4 * GIB).start == []
    first.status = JobStatus.EXITED
    assert plan([first, second], max_running=4, memory_budget=4 * GIB).start == [second]
