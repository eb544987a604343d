"""What machine a benchmark ran on, printed at the top of every benchmark's report."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess


def describe() -> dict[str, str]:
    cpu = platform.processor() or ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "os": platform.platform(),
    }


def banner(name: str) -> str:
    info = describe()
    lines = [f"# {name}", *(f"{k}: {v}" for k, v in info.items())]
    return "\n".join(lines)
