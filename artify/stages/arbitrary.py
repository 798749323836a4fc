"""The arbitrary method's training stage (arbitrary.smk): an AdaIN decoder trained on a job's frames and
keyframes, resumable."""
from __future__ import annotations

from artify.methods.train_arbitrary import train_arbitrary
from artify.settings import Settings


def run_train_arbitrary(content, keyframes_tsv, keyframe_dir, out, settings: Settings, device="auto", seed: int = 0,
                        threads: int | None = None) -> dict:
    """Train the decoder -> decoder.pth (and its training state, resumable); says how far it got."""
    result = train_arbitrary(content, keyframes_tsv, keyframe_dir, out, settings, device=device, seed=seed,
                             threads=threads)
    print(f"{result['step']} iterations, last loss {result['history'][-1][1]:.4g} -> {out}")
    return result
