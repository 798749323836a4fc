"""Every tunable of the pipeline, grouped by the stage that reads it, with its default and meaning.

config/config.yaml holds the same defaults (a test keeps them equal), jobs.tsv columns override them per
job, and each stage's group becomes that stage's command-line options (`artify <stage> --help`) and its
rule's `params:`, so changing a key reruns exactly the stages that read it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields


def _f(default, help: str, choices=None):
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class FrameRange:
    max_frames: int = _f(0, "process only the first N frames of the content video; 0 = all")


@dataclass(frozen=True)
class ChunkSettings:
    chunk_frames: int = _f(24, "frames per stylization job (the unit of parallelism and of caching)")
    chunk_overlap: int = _f(4, "frames each chunk repeats from the one before, cross-faded in assemble")


@dataclass(frozen=True)
class ExtractSettings:
    size: int = _f(256, "long side of the processing resolution in pixels (rounded to even sizes)")


@dataclass(frozen=True)
class SceneSettings:
    scene_detector: str = _f("adaptive", "PySceneDetect detector for the style video",
                             ["adaptive", "content", "threshold"])
    scene_threshold: float = _f(3.0, "the detector's threshold (adaptive: ratio; content: score; threshold: luma)")
    min_scene_frames: int = _f(15, "shortest scene, in frames of the style video")


@dataclass(frozen=True)
class KeyframeSettings:
    keyframe_samples: int = _f(8, "frames sampled per scene when choosing its keyframe")
    blur_threshold: float = _f(0.2, "drop samples sharper than this fraction of the scene's sharpest (Laplacian variance)")
    merge_threshold: float = _f(0.0, "merge neighbouring keyframes whose Gram distance is below this; 0 = keep all")
    max_keyframes: int = _f(8, "at most this many keyframes (closest neighbours merged first)")


@dataclass(frozen=True)
class ScheduleSettings:
    schedule_spread: str = _f("proportional", "how keyframes share the target's timeline",
                              ["proportional", "equal"])
    transition_seconds: float = _f(1.0, "length of the cross-fade between consecutive styles")
    transition_curve: str = _f("cosine", "shape of the cross-fade", ["cosine", "linear"])


@dataclass(frozen=True)
class StylizeSettings:
    method: str = _f("gatys", "stylization method", ["gatys", "segmented", "arbitrary"])
    device: str = _f("auto", "where to run: auto (CUDA when present), cpu or cuda", ["auto", "cpu", "cuda"])
    seed: int = _f(0, "random seed; CPU runs are deterministic for a given seed")
    iterations: int = _f(60, "optimiser iterations for a chunk's first frame")
    warm_iterations: int = _f(20, "iterations for frames initialised from the previous stylized frame")
    optimizer: str = _f("lbfgs", "optimiser for gatys", ["lbfgs", "adam"])
    learning_rate: float = _f(0.02, "Adam step size (pixels in [0, 1])")
    content_weight: float = _f(1.0, "weight of the content loss")
    style_weight: float = _f(50.0, "weight of the Gram style loss")
    tv_weight: float = _f(1.0e-3, "weight of the total-variation smoothness loss")
    content_layers: str = _f("relu4_2", "comma-separated VGG19 layers for the content loss")
    style_layers: str = _f("relu1_1,relu2_1,relu3_1,relu4_1,relu5_1", "comma-separated VGG19 layers for the style loss")
    style_size: int = _f(256, "long side the style keyframes are resized to before taking their Gram matrices")


@dataclass(frozen=True)
class AssembleSettings:
    crf: int = _f(18, "H.264 quality (lower is better, 18 is visually lossless)")
    audio: str = _f("auto", "auto: keep the input's audio when it has one; required: fail without; none: drop",
                    ["auto", "required", "none"])


# Which settings each stage reads (and so which changes rerun it).
STAGES = {
    "plan_chunks": (FrameRange, ChunkSettings),
    "extract_chunk": (ExtractSettings,),
    "detect_scenes": (SceneSettings,),
    "select_keyframes": (KeyframeSettings,),
    "plan_schedule": (FrameRange, ScheduleSettings),
    "stylize_chunk": (StylizeSettings,),
    "assemble": (AssembleSettings,),
}


def _fields(stage: str):
    return [f for cls in STAGES[stage] for f in fields(cls)]


def defaults() -> dict:
    """Every key of every stage with its default value."""
    return {f.name: f.default for stage in STAGES for f in _fields(stage)}


def stage_options(stage: str, settings: dict) -> list[str]:
    """The command-line options of `stage` for these settings, e.g. ['--iterations', '60', ...]."""
    args = []
    for f in _fields(stage):
        args += [f"--{f.name.replace('_', '-')}", str(settings[f.name])]
    return args


def add_options(parser, stage: str) -> None:
    """Add `stage`'s settings to an argparse parser, with their defaults and help."""
    for f in _fields(stage):
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=type(f.default), default=f.default,
                            choices=f.metadata["choices"], help=f.metadata["help"] + f" (default: {f.default})")


def from_args(stage: str, ns) -> dict:
    return {f.name: getattr(ns, f.name) for f in _fields(stage)}
