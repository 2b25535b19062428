"""Small statistics for the benchmark: medians, spreads and the machine's description."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from typing import Iterable, Sequence


def median(values: Iterable[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        raise ValueError("median of nothing")
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def spread(values: Sequence[float]) -> tuple[float, float]:
    """The lowest and highest of the per-repetition medians."""
    return min(values), max(values)


def percentile(values: Iterable[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
    except OSError:
        pass
    system = platform.platform()
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    system = line.split("=", 1)[1].strip().strip('"') + f" (kernel {platform.release()})"
                    break
    except OSError:
        pass
    packages = []
    for name in ("aws-lambda-powertools", "boto3", "botocore", "pg8000", "PyMySQL", "sqlglot"):
        try:
            packages.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            packages.append(f"{name} (not installed)")
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu}, {os.cpu_count()} logical CPUs",
        "memory": memory,
        "system": system,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": ", ".join(packages),
        "commit": _git_commit(),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _git_commit() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "functions"],
            cwd=here, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        return commit + (" with uncommitted changes under functions/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
