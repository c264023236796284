"""What doctor reports: findings with a severity, the numbers behind them and the fix."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

__all__ = ["Finding", "PoolPlan", "Severity", "exit_status", "summary"]


class Severity(IntEnum):
    """How bad a finding is; the order decides doctor's exit status."""

    OK = 0
    INFO = 1
    WARNING = 2
    ERROR = 3

    @property
    def label(self) -> str:
        """Lower-case name, as printed and in JSON."""
        return self.name.lower()


@dataclass(frozen=True)
class Finding:
    """One thing doctor checked: what it found, the numbers that show it, what they mean
    and, when something should change, the exact change."""

    severity: Severity
    check: str
    title: str
    numbers: dict[str, Any] = field(default_factory=dict)
    detail: str = ""
    fix: str = ""
    #: The fix as data: the settings it changes (see :mod:`poolwarden.cli.fixes`), so
    #: that it can be applied and checked as well as read. Empty when the fix is advice
    #: about code or SQL rather than a setting.
    changes: dict[str, Any] = field(default_factory=dict)
    #: What the finding is about, when one check reports several things (the Flask
    #: config key); ``(check, subject)`` names a finding across runs.
    subject: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The finding for ``--json``."""
        return {
            "severity": self.severity.label,
            "check": self.check,
            "title": self.title,
            "numbers": self.numbers,
            "detail": self.detail,
            "fix": self.fix,
            "changes": self.changes,
        }


@dataclass(frozen=True)
class PoolPlan:
    """The pool settings being checked, and where each came from (an option, a Flask
    config file, or SQLAlchemy's default)."""

    pool_size: int = 5
    max_overflow: int = 10
    #: Seconds; None when not set (SQLAlchemy's -1).
    pool_recycle: float | None = None
    processes: int = 1
    instances: int = 1
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def per_process(self) -> int:
        """Connections one process's pool may open."""
        return self.pool_size + self.max_overflow

    @property
    def fleet_processes(self) -> int:
        """Processes on all instances together."""
        return self.processes * self.instances

    @property
    def fleet(self) -> int:
        """Connections every process on every instance may open together."""
        return self.fleet_processes * self.per_process

    def fleet_formula(self) -> str:
        """``processes x instances x (pool_size + max_overflow) = total``."""
        return (
            f"{self.processes} process(es) x {self.instances} instance(s) x "
            f"(pool_size {self.pool_size} + max_overflow {self.max_overflow}) = {self.fleet}"
        )

    def as_dict(self) -> dict[str, Any]:
        """The settings and their sources, for ``--json``."""
        return {
            "pool_size": self.pool_size,
            "max_overflow": self.max_overflow,
            "pool_recycle": self.pool_recycle,
            "processes": self.processes,
            "instances": self.instances,
            "fleet_connections": self.fleet,
            "sources": self.sources,
        }


def exit_status(findings: Iterable[Finding]) -> int:
    """0 when nothing needs a change, 1 with warnings, 2 with errors."""
    worst = max((finding.severity for finding in findings), default=Severity.OK)
    return 2 if worst is Severity.ERROR else 1 if worst is Severity.WARNING else 0


def summary(findings: Iterable[Finding]) -> dict[str, int]:
    """How many findings of each severity, worst first."""
    counts = Counter(finding.severity for finding in findings)
    return {severity.label: counts[severity] for severity in sorted(Severity, reverse=True)}
