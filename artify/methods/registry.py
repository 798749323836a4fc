"""The stylization methods: which there are, what each reads, needs and costs, and where it stylizes a shot.

A method is a module with one entry point,

    stylizer(settings, device, inputs) -> Callable[[Shot], Iterable[np.ndarray]]

which loads what the method needs once (a network, VGG19's weights; `inputs` maps each job input the method
needs beyond the frames, e.g. "decoder", to its path) and returns a function that yields one stylized uint8
frame per frame of a `Shot`. The chunk driver (stylize stage), `artify image`, span sizing and the workflow's
rules ask METHODS instead of comparing `method` to names; adding a method is one module plus its `Method`
entry below (and its name among the `method` setting's choices, which a test keeps equal to METHODS).

The entries are declarations only, so this module imports no torch: Snakemake reads them while it builds the
job graph, and a method's module is imported when a job first stylizes with it (`Method.stylizer`).
PySceneDetect's detectors behind one `SceneDetector` interface are the model.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import numpy as np

from artify.settings import (ArbitrarySettings, ConfigError, FlowSettings, SegmentedSettings, Settings,
                             StylizeSettings, VGGSettings)

# What a job may need besides its frames, schedule and keyframes; each is a file or folder a rule makes.
NEEDS = {
    "flows": "the chunk's flow file (rule flow_chunk)",
    "masks": "the chunk's foreground masks (rule segment_chunk)",
    "decoder": "an AdaIN decoder trained for the job (rule train_arbitrary)",
    "shot_networks": "the job's shots table and per-shot networks (rule train_propagate)",
}


@dataclass(frozen=True)
class Shot:
    """What a method stylizes at once: the frames of one chunk within one shot (nothing temporal reaches
    across a cut or past the chunk), with everything known about them."""
    frames: np.ndarray  # (n, h, w, 3) uint8
    weights: np.ndarray  # (n, styles): the style schedule's mix on each frame
    keyframes: list[np.ndarray]  # the style keyframes, RGB uint8 at style_size
    start: int = 0  # index in the content video of frames[0]
    flows: dict | None = None  # `artify.flow.backward_flows` of these frames: jobs that need "flows"
    previous: list[np.ndarray] | None = None  # chained chunks: the previous chunk's stylized overlap
    masks: np.ndarray | None = None  # (n, h, w) float foreground masks: jobs that need "masks"


def _temporal(values: Mapping) -> frozenset[str]:
    return frozenset({"flows"}) if values["temporal"] else frozenset()


def _segmented_needs(values: Mapping) -> frozenset[str]:
    return _temporal(values) | {"masks"}


def _propagate_needs(values: Mapping) -> frozenset[str]:  # flows: its flow blend of what the network paints
    return frozenset({"shot_networks"}) | (_temporal(values) if values["flow_blend"] > 0 else frozenset())


def _arbitrary_needs(values: Mapping) -> frozenset[str]:
    trained = values["arbitrary_network"] == "adain" and not values["adain_decoder"]
    return _temporal(values) | ({"decoder"} if trained else set())


@dataclass(frozen=True)
class Method:
    name: str
    module: str  # the module whose stylizer(settings, device, inputs) this method runs
    summary: str
    reads: tuple[type, ...]  # the settings groups its stylization reads (beyond MethodSettings)
    needs: Callable[[Mapping], frozenset[str]]  # of NEEDS, for a job's setting values
    # (fixed seconds, seconds a frame at 256x144) of one stylization job, by device: bench/gatys.py,
    # bench/magenta.py and bench/segment.py on the 2-core development VM and an H100; used to size spans
    # and to ask a cluster for time (artify.quality.sizing, artify.quality.cost)
    costs: dict[str, tuple[float, float]] = field(default_factory=dict)
    images: bool = True  # `artify image` can run it on one picture (no flows, masks or trained network)
    batched: bool = False  # stylizes batch_frames at once: out of memory, it retries with half
    # the flow `flow_method: auto` gives its jobs on CUDA (bench/flow.py): RAFT where its seconds are small
    # beside the method's own (the optimising methods); DIS for a feed-forward method, and on every CPU
    flow_on_cuda: str = "dis"

    def stylizer(self, settings: Settings, device, inputs: Mapping | None = None) -> Callable[[Shot], Iterable]:
        """The method's stylization of one shot at a time, its models loaded once for these settings."""
        return importlib.import_module(self.module).stylizer(settings, device, dict(inputs or {}))


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("gatys", "artify.methods.gatys",
           "Gatys et al.'s optimisation, steadied along the flow (Ruder et al.)",
           (StylizeSettings, VGGSettings), _temporal,
           {"cpu": (5.0, 14.0), "cuda": (8.0, 0.3)}, flow_on_cuda="raft"),
    Method("segmented", "artify.methods.segmented",
           "gatys on the foreground and the background apart (SAM or motion masks), merged",
           (StylizeSettings, VGGSettings, SegmentedSettings, FlowSettings), _segmented_needs,
           {"cpu": (5.0, 26.0), "cuda": (8.0, 0.6)}, images=False, flow_on_cuda="raft"),
    Method("arbitrary", "artify.methods.arbitrary",
           "a feed-forward arbitrary-style network: Magenta's pretrained one, or AdaIN",
           (StylizeSettings, ArbitrarySettings, VGGSettings), _arbitrary_needs,
           {"cpu": (5.0, 0.055), "cuda": (8.0, 0.003)}, batched=True),
    # the stylization only applies the trained networks; the keyframes are rule propagate_keyframes', the training
    # on them rule train_propagate's
    Method("propagate", "artify.methods.propagate",
           "keyframes stylized by gatys or arbitrary, carried to every frame of a shot by a network trained on them",
           (ArbitrarySettings,), _propagate_needs,
           {"cpu": (5.0, 0.05), "cuda": (8.0, 0.003)}, images=False, batched=True),
)}


def method_for(name: str) -> Method:
    """The registered method called `name` (the `method` setting)."""
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"setting 'method': {name!r} is not one of {', '.join(METHODS)}") from None


def needs(settings: Settings | Mapping) -> frozenset[str]:
    """What a job of these settings needs besides its frames (of NEEDS): a `Settings`, or a job's setting
    values as the workflow holds them (a dict)."""
    values = settings if isinstance(settings, Mapping) else vars(settings)
    return method_for(values["method"]).needs(values)
