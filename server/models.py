"""The memory figures the server reports (`welcome`, `release`).

The models themselves live in the one model cache, :mod:`strata.core.cache`: the server keeps them warm
between jobs, and `release` (the user's "Free memory" button) empties it.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def process_rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; peak RSS elsewhere as an approximation)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def memory_report() -> dict[str, Any]:
    """{"rss_bytes": ..., and with torch+CUDA loaded: "gpu_free_bytes", "gpu_total_bytes", "gpu_allocated_bytes"}."""
    report: dict[str, Any] = {"rss_bytes": process_rss_bytes()}
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                free, total = torch.cuda.mem_get_info()
                report.update(gpu_free_bytes=int(free), gpu_total_bytes=int(total),
                              gpu_allocated_bytes=int(torch.cuda.memory_allocated()))
        except Exception as exc:  # a broken driver must not break status requests
            report["gpu_error"] = str(exc)
    return report
