"""The cost of a job from its Snakemake benchmark files: seconds per output frame and peak memory per stage.

Light on purpose (no torch): the stage_times rule and the benchmark script import only this.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .video import atomic_write_text


def _float(x) -> float | None:
    """Plain float for JSON; NaN (undefined) becomes None."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def read_benchmark(path) -> dict:
    """One Snakemake benchmark file -> {"s": wall seconds, "max_rss": peak resident MB (NaN if not measured)}.

    Snakemake writes a header line and one line per repeat (s, h:m:s, max_rss, max_vms, ..., cpu_time); a job
    too short to be sampled has "-" or "NA" for the memory columns. Repeats are averaged (s) or maxed (rss).
    """
    table = pd.read_csv(path, sep="\t", na_values=["-", "NA"])
    if "s" not in table.columns or table.empty:
        raise ValueError(f"{path}: not a Snakemake benchmark file (no 's' column or no rows)")
    rss = pd.to_numeric(table["max_rss"], errors="coerce") if "max_rss" in table.columns else pd.Series([np.nan])
    return {"s": float(pd.to_numeric(table["s"]).mean()), "max_rss": float(rss.max()) if rss.notna().any()
            else float("nan")}


def stage_times(benchmark_files, frames: int, out_tsv=None) -> pd.DataFrame:
    """Seconds per output frame and peak memory of each stage of one job, from its Snakemake benchmark files.

    A file's stage is its folder (benchmarks/{rule}/{job}[_{chunk}].tsv); the chunks of a stage add up.
    Columns: stage, jobs (files), seconds, seconds_per_frame (seconds / frames), max_rss_mb (the largest of
    the stage's jobs; NaN when none was sampled). Written as TSV when out_tsv is given.
    """
    if frames < 1:
        raise ValueError(f"stage times need the number of frames (>= 1), got {frames}")
    rows: dict[str, dict] = {}
    for path in benchmark_files:
        stage = Path(path).parent.name
        b = read_benchmark(path)
        row = rows.setdefault(stage, {"stage": stage, "jobs": 0, "seconds": 0.0, "rss": []})
        row["jobs"] += 1
        row["seconds"] += b["s"]
        if not math.isnan(b["max_rss"]):
            row["rss"].append(b["max_rss"])
    table = pd.DataFrame([{"stage": r["stage"], "jobs": r["jobs"], "seconds": r["seconds"],
                           "max_rss_mb": max(r["rss"]) if r["rss"] else float("nan")} for r in rows.values()],
                         columns=["stage", "jobs", "seconds", "max_rss_mb"])
    table.insert(3, "seconds_per_frame", table["seconds"] / frames)
    if out_tsv is not None:
        atomic_write_text(out_tsv, table.to_csv(sep="\t", index=False))
    return table


def cost_metrics(stage_table: pd.DataFrame) -> dict:
    """metrics.json's cost keys from `stage_times`: per-stage and total seconds per frame, peak memory (MB)."""
    per_stage = {r.stage: {"seconds_per_frame": _float(r.seconds_per_frame), "seconds": _float(r.seconds),
                           "jobs": int(r.jobs), "max_rss_mb": _float(r.max_rss_mb)}
                 for r in stage_table.itertuples()}
    rss = stage_table["max_rss_mb"].dropna()
    return {"seconds_per_frame": _float(stage_table["seconds_per_frame"].sum()),
            "peak_memory_mb": _float(rss.max()) if len(rss) else None,
            "stages": per_stage}
