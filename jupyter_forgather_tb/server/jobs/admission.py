"""Today's rules, applied at every start of a job: launch, relaunch, wake, restore, re-adoption.

A job saved under looser settings (no cap, a larger one, a port, a log directory that
has since become a link out of the allowed roots) starts again only within the
settings the server runs with now. :func:`admit` is the pure part (ports, memory),
applied whenever a job joins the queue; :func:`confine` the file-system part (log
directories resolved and checked again), applied just before its process starts.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Protocol

from ...common.options import LaunchOptions, OptionError, refuse_tcp
from ...common.sizes import format_size
from ...common.sources import url_scheme
from ..logdirs.find import inside_roots


class Rules(Protocol):
    """The settings a start is checked against (``ManagerSettings`` has them)."""

    memory_limit: int  # the default cap; 0: none
    max_memory_limit: int  # 0: no maximum
    total_memory_limit: int  # 0: no budget
    allow_port: bool
    allowed_roots: list[str]


def warn_of_default_cap(rules: Rules, log: logging.Logger) -> None:
    """Warn, at start, when ``memory_limit`` is not what a job that asks for no cap gets."""
    if rules.memory_limit != default_cap(rules):
        log.warning(
            "memory_limit (%s) is not within max_memory_limit (%s): a job that asks for "
            "no cap gets %s",
            format_size(rules.memory_limit) if rules.memory_limit else "no cap",
            format_size(rules.max_memory_limit),
            format_size(default_cap(rules)),
        )


def default_cap(rules: Rules) -> int:
    """The cap of a job that asks for none: ``memory_limit``, never above ``max_memory_limit``.

    With a maximum, a default of 0 (no cap), or one above the maximum, gives the maximum.
    """
    default, most = rules.memory_limit, rules.max_memory_limit
    if most and (not default or default > most):
        return most
    return default


def ceiling(rules: Rules) -> int | None:
    """The largest cap one job may have today (``max_memory_limit``, the budget); None: none."""
    limits = [limit for limit in (rules.max_memory_limit, rules.total_memory_limit) if limit]
    return min(limits) if limits else None


def memory_cap(asked: int | None, rules: Rules) -> int | None:
    """The memory cap a job asking for ``asked`` (None: nothing, 0: no cap) gets, or
    :class:`OptionError` naming ``memory_limit`` and the limit it breaks."""
    most, budget = rules.max_memory_limit, rules.total_memory_limit
    cap = default_cap(rules) if asked is None else asked
    if most and asked == 0:
        raise OptionError(
            "memory_limit",
            f"0 asks for no cap, but every job on this server needs one of at most "
            f"{format_size(most)} (max_memory_limit)",
        )
    if asked and most and asked > most:
        raise OptionError(
            "memory_limit",
            f"{format_size(asked)} is more than the {format_size(most)} "
            "one job may ask for on this server (max_memory_limit)",
        )
    if budget:
        if not cap:
            raise OptionError(
                "memory_limit",
                "this server shares a memory budget between jobs (total_memory_limit): "
                "every job needs a memory limit",
            )
        if cap > budget:
            raise OptionError(
                "memory_limit",
                f"{format_size(cap)} is more than the memory budget of all jobs together "
                f"({format_size(budget)}, total_memory_limit)",
            )
    return cap or None


def admit(options: LaunchOptions, rules: Rules) -> int | None:
    """Check options against today's rules (``allow_port``, the memory limits); the job's cap.

    Raises :class:`OptionError` naming the field and the rule. A cap it returns
    always fits the memory budget alone, so an admitted job never waits for ever.
    """
    if not rules.allow_port:
        refuse_tcp(options)
    return memory_cap(options.memory_limit, rules)


def confine(options: LaunchOptions, rules: Rules) -> LaunchOptions:
    """The options with every local log directory resolved again, each checked to be
    inside the allowed roots now; :class:`OptionError` (``"<dir> now resolves to
    <target>, outside the allowed roots"``) if one is not.

    Reads the file system (symlinks): call it in a thread. The job must then read the
    paths returned, not the ones it was launched with.
    """
    if options.logdirs is not None:
        members = tuple((name, _resolved(path, rules, "logdirs")) for name, path in options.logdirs)
        return replace(options, logdirs=members)
    if url_scheme(options.logdir):
        return options
    return replace(options, logdir=_resolved(options.logdir, rules, "logdir"))


def _resolved(path: str, rules: Rules, field: str) -> str:
    real = os.path.realpath(path)
    if not inside_roots(real, rules.allowed_roots):
        raise OptionError(field, f"{path} now resolves to {real}, outside the allowed roots")
    return real
