"""Matplotlib for files, not screens: one place that picks the Agg backend and saves a figure atomically.
Imported where a plot is drawn (matplotlib costs a light stage's start-up otherwise)."""
from __future__ import annotations

from artify.atomic import atomic_path


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed: jobs run on cluster nodes and in CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out_png, **savefig_args) -> None:
    """Save `fig` as a PNG atomically (the folder made as needed), then close it to free its memory."""
    try:
        with atomic_path(out_png) as tmp:
            fig.savefig(tmp, format="png", **savefig_args)
    finally:
        pyplot().close(fig)
