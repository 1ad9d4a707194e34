"""Plain-language hints for jobs that SLURM killed (read from the SLURM job logs).

Snakemake's SLURM plugin prints the rule, the SLURM job id and the log of a failed job,
but with `squeue` as status command (clusters without accounting) not why SLURM ended it.
:func:`failure_hints` reads the job logs written since the run started and says which
resource to raise, naming the rule, the job id and the log.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# (what SLURM writes into the job log, what it means and what to do)
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"Exceeded job memory limit|exceeded memory limit|oom[-_ ]kill|OUT_OF_MEMORY", re.I),
        "killed by SLURM for using more memory than it asked for: raise mem_mb for rule {rule} "
        "(--set-resources {rule}:mem_mb=<MB>, or under set-resources in profiles/slurm)",
    ),
    (
        re.compile(r"DUE TO TIME LIMIT|TIMEOUT", re.I),
        "killed by SLURM at its time limit: raise runtime (minutes) for rule {rule} "
        "(--set-resources {rule}:runtime=<min>); training resumes from state.pt when rerun",
    ),
    (
        re.compile(r"CANCELLED AT .* DUE TO PREEMPTION|NODE_FAIL", re.I),
        "lost with its node (preemption or node failure): rerun; incomplete outputs are redone",
    ),
)


def failure_hints(log_root: str | os.PathLike = ".snakemake/slurm_logs", since: float = 0.0) -> list[str]:
    """One line per SLURM job log (newer than ``since``) that shows a known cause of death.

    Logs are ``<log_root>/rule_<rule>/[<wildcards>/]<jobid>.log`` (the plugin's layout).
    """
    root = Path(log_root)
    if not root.is_dir():
        return []
    hints = []
    for log in sorted(root.rglob("*.log")):
        try:
            if log.stat().st_mtime < since:
                continue
            text = log.read_text(errors="replace")
        except OSError:
            continue
        rule_dir = log.relative_to(root).parts[0]
        rule = rule_dir[len("rule_") :] if rule_dir.startswith("rule_") else rule_dir
        for pattern, advice in PATTERNS:
            if pattern.search(text):
                hints.append(f"rule {rule}, SLURM job {log.stem}: {advice.format(rule=rule)} (log: {log})")
                break
    return hints
