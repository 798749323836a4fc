"""Progress lines for the logs: every long loop in artify reports through `progress`, in one format.

Logs are files, not terminals, so the bar is tqdm's ASCII one; ARTIFY_PROGRESS=0 silences it everywhere
(tests, benchmarks). tqdm is imported only when a bar is made.
"""
from __future__ import annotations

import os


def progress(iterable=None, label: str = "", total: int | None = None, unit: str = "frame",
             every_step: bool = False, initial: int = 0, enabled: bool = True):
    """`iterable` wrapped in a progress bar that writes to stderr (or a bar to `update` by hand when None).

    every_step: a line for every step (a stylized frame takes seconds, and the log should show where a run
    is); otherwise at most one a second.
    """
    from tqdm import tqdm

    return tqdm(iterable, total=total, initial=initial, desc=label, unit=unit, ascii=True,
                mininterval=0 if every_step else 1.0,
                disable=not enabled or os.environ.get("ARTIFY_PROGRESS") == "0")
