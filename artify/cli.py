"""`artify` command line: every pipeline stage as a subcommand, mirroring the library functions.

The Snakemake rules call these same subcommands, so a stage runs the same way by hand, in a test or
from a rule. Errors about inputs print one line naming the file and the problem, and exit 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from artify import settings as S


def _stage_parser(sub, name: str, help: str, stage: str | None = None):
    """The subcommand `name`, run by cmd_<name> (dashes as underscores), with the options of settings stage
    `stage`."""
    p = sub.add_parser(name, help=help, description=help)
    p.set_defaults(func=globals()["cmd_" + name.replace("-", "_")])
    if stage:
        S.add_options(p, stage)
    return p


# Each command imports its stage's module when it runs: a light command (probe, plan-chunks, extract-frames,
# assemble) must not pay the imports of a heavy one (torch: about 2 s of CPU).

def cmd_demo(a):
    from artify.demo import make_demo

    make_demo(a.content, a.style, seconds=a.seconds)


def cmd_probe(a):
    from artify.stages.video import run_probe

    run_probe(a.video, a.output)


def cmd_plan_chunks(a):
    from artify.stages.video import run_plan_chunks

    run_plan_chunks(a.meta, a.output, S.from_args("plan_chunks", a))


def cmd_extract_frames(a):
    from artify.stages.video import run_extract_frames

    run_extract_frames(a.video, a.meta, a.chunks, a.span, a.output, S.from_args("extract_frames", a))


def cmd_detect_scenes(a):
    from artify.stages.style import run_detect_scenes

    run_detect_scenes(a.style, a.output, S.from_args("detect_scenes", a))


def cmd_detect_cuts(a):
    from artify.stages.style import run_detect_cuts

    run_detect_cuts(a.video, a.meta, a.output, S.from_args("detect_cuts", a))


def cmd_select_keyframes(a):
    from artify.stages.style import run_select_keyframes

    run_select_keyframes(a.style, a.scenes, a.out_dir, a.output, S.from_args("select_keyframes", a),
                         sheet=a.contact_sheet)


def cmd_plan_schedule(a):
    from artify.stages.style import run_plan_schedule

    run_plan_schedule(a.keyframes, a.meta, a.output, S.from_args("plan_schedule", a), cuts_tsv=a.cuts, plot=a.plot)


def cmd_flow_chunk(a):
    from artify.stages.flow import flow_chunk

    flow_chunk(a.frames, a.output, S.from_args("flow_chunk", a), threads=a.threads)


def cmd_flow_span(a):
    from artify.stages.flow import flow_span

    flow_span(a.frames, a.chunks, a.span, a.output, S.from_args("flow_chunk", a), threads=a.threads)


def cmd_segment_span(a):
    from artify.devices import pick_device
    from artify.stages.segment import segment_span

    segment_span(a.frames, a.chunks, a.span, a.output, S.from_args("segment_chunk", a), pick_device(a.device),
                 threads=a.threads, cuts=a.cuts, foreground=a.foreground)


def cmd_stylize_span(a):
    from artify.stages.stylize import stylize_span

    stylize_span(a.frames, a.chunks, a.span, a.schedule, a.keyframes, a.keyframe_dir, a.output,
                 S.from_args("stylize_chunk", a), threads=a.threads, flows_dir=a.flows, previous_dir=a.previous,
                 decoder=a.decoder, masks_dir=a.masks, job=a.job, cuts=a.cuts, shot_networks=a.shot_networks)


def cmd_stylize_chunk(a):
    from artify.stages.stylize import stylize_chunk

    stylize_chunk(a.frames, a.chunks, a.chunk, a.schedule, a.keyframes, a.keyframe_dir, a.output,
                  S.from_args("stylize_chunk", a), threads=a.threads, flows=a.flows,
                  previous_chunk=a.previous, decoder=a.decoder, masks=a.masks, job=a.job, cuts=a.cuts,
                  shot_networks=a.shot_networks)


def cmd_segment_chunk(a):
    from artify.devices import pick_device
    from artify.stages.segment import run_segment_chunk

    run_segment_chunk(a.frames, a.output, S.from_args("segment_chunk", a), device=pick_device(a.device),
                      threads=a.threads)


def cmd_train_arbitrary(a):
    from artify.stages.arbitrary import run_train_arbitrary

    run_train_arbitrary(a.content, a.keyframes, a.keyframe_dir, a.output, S.from_args("train_arbitrary", a),
                        device=a.device, seed=a.seed, threads=a.threads)


def cmd_propagate_keyframes(a):
    from artify.stages.propagate import run_propagate_keyframes

    rows = run_propagate_keyframes(a.frames, a.chunks, a.cuts, a.schedule, a.keyframes, a.keyframe_dir, a.output,
                                   S.from_args("propagate_keyframes", a), threads=a.threads)
    print(f"{len(rows)} shots' keyframes -> {a.output}")


def cmd_train_propagate(a):
    from artify.stages.propagate import run_train_propagate

    rows = run_train_propagate(a.frames, a.chunks, a.shot_keyframes, a.output, S.from_args("train_propagate", a),
                               threads=a.threads)
    print(f"{len(rows)} shot networks -> {a.output}")


def cmd_assemble(a):
    from artify.stages.video import run_assemble

    run_assemble(a.meta, a.chunks, a.stylized, a.output, S.from_args("assemble", a), content=a.content)


def cmd_evaluate(a):
    from artify.stages.evaluate import run_evaluate

    run_evaluate(a.stylized, a.content, a.meta, a.schedule, a.keyframes, a.keyframe_dir, a.output, a.per_frame,
                 S.from_args("evaluate", a), size=a.size, device=a.device, stage_times_tsv=a.stage_times,
                 foreground_tsvs=a.foreground)


def cmd_stage_times(a):
    from artify.stages.evaluate import run_stage_times

    run_stage_times(a.benchmarks, a.chunks, a.output)


def cmd_deflicker(a):
    from artify.stages.evaluate import run_deflicker

    run_deflicker(a.video, a.output, S.from_args("deflicker", a), crf=a.crf)


def cmd_side_by_side(a):
    from artify.stages.report import run_side_by_side

    run_side_by_side(a.content, a.stylized, a.meta, a.schedule, a.keyframes, a.keyframe_dir, a.output)


def cmd_contact_sheet(a):
    from artify.stages.report import run_contact_sheet

    run_contact_sheet(a.content, a.stylized, a.meta, a.output, S.from_args("contact_sheet", a))


def _labelled(items: list[str]) -> dict[str, str]:
    """[LABEL=]PATH arguments -> {label: path}; a path without a label is named by its folder (results/{job}/...)."""
    return dict(item.split("=", 1) if "=" in item else (Path(item).parent.name, item) for item in items)


def cmd_plot_per_frame(a):
    from artify.stages.report import run_plot_per_frame

    run_plot_per_frame(_labelled(a.per_frame), a.schedule, a.meta, a.output)


def cmd_compare(a):
    from artify.stages.report import run_compare

    try:
        entries = json.loads(a.entries)
    except ValueError as e:
        raise S.ConfigError(f"--entries: not a JSON list of jobs ({e})") from None
    run_compare(entries, a.markdown, a.html, S.from_args("compare", a), title=a.title, content=a.content,
                meta_json=a.meta, tally_json=a.tally, assess_page=a.assess_page, answers_dir=a.answers_dir)


def _assess_usage(message: str):
    print(f"artify assess: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def cmd_assess(a):
    from artify.stages.report import run_assess, run_tally

    if a.tally:
        if a.videos or not a.key or not a.output:
            _assess_usage("--tally CSV... needs --key (key files or folders) and -o tally.json, and no videos")
        run_tally(a.tally, a.key, a.output)
        return
    if len(a.videos) < 2 or not (a.content and a.meta and a.output and a.key and len(a.key) == 1):
        _assess_usage("JOB=VIDEO JOB=VIDEO... needs at least two videos, --content, --meta, -o page.html and one "
               "--key key.json")
    run_assess(a.content, _labelled(a.videos), a.meta, a.output, a.key[0], S.from_args("assess", a),
               key_archive=a.key_archive)


def cmd_image(a):
    from artify.methods.image import stylize_image

    stylize_image(a.content, a.style, a.output, S.from_args("stylize_chunk", a), size=a.size)


def _span_arguments(p, frames_help: str) -> None:
    p.add_argument("frames", help=frames_help)
    p.add_argument("--chunks", required=True, help="the job's chunks.tsv")
    p.add_argument("--span", type=int, required=True)
    p.add_argument("--threads", type=int, default=None, help="torch/OpenCV threads (the job's threads)")
    p.add_argument("-o", "--output", required=True, help="the span's output folder")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="artify", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _stage_parser(sub, "demo", "write the built-in demo's content clip and style video")
    p.add_argument("--content", required=True)
    p.add_argument("--style", required=True)
    p.add_argument("--seconds", type=float, default=3.0)

    p = _stage_parser(sub, "probe", "exact fps, size, rotation, frame count and audio of a video -> meta.json")
    p.add_argument("video")
    p.add_argument("-o", "--output", required=True)

    p = _stage_parser(sub, "plan-chunks", "split the frames into overlapping chunks -> chunks.tsv", "plan_chunks")
    p.add_argument("--meta", required=True)
    p.add_argument("-o", "--output", required=True)

    p = _stage_parser(sub, "extract-frames", "decode one span's frames at the processing size -> a folder of "
                      "one .npy per chunk", "extract_frames")
    p.add_argument("video")
    p.add_argument("--meta", required=True)
    p.add_argument("--chunks", required=True)
    p.add_argument("--span", type=int, required=True)
    p.add_argument("-o", "--output", required=True, help="the span's folder")

    p = _stage_parser(sub, "detect-scenes", "find the scenes of a style video -> scenes.tsv", "detect_scenes")
    p.add_argument("style")
    p.add_argument("-o", "--output", required=True)

    p = _stage_parser(sub, "detect-cuts", "find the cuts of the content video (where its shots start), in the "
                      "pipeline's frame numbers -> cuts.tsv", "detect_cuts")
    p.add_argument("video")
    p.add_argument("--meta", required=True, help="the video's meta.json (probe)")
    p.add_argument("-o", "--output", required=True)

    p = _stage_parser(sub, "select-keyframes", "one representative frame per distinct style -> keyframes.tsv",
                      "select_keyframes")
    p.add_argument("style")
    p.add_argument("--scenes", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--contact-sheet")
    p.add_argument("-o", "--output", required=True)

    p = _stage_parser(sub, "plan-schedule", "per-frame style weights with cross-fades -> schedule.tsv", "plan_schedule")
    p.add_argument("--keyframes", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--plot")
    p.add_argument("--cuts", help="the content's cuts.tsv (detect-cuts): style boundaries sync to them")
    p.add_argument("-o", "--output", required=True)

    p = _stage_parser(sub, "flow-chunk", "optical flow and reliable-pixel masks of one chunk (.npz)", "flow_chunk")
    p.add_argument("frames")
    p.add_argument("--threads", type=int, default=None, help="OpenCV/torch threads (the job's threads)")
    p.add_argument("-o", "--output", required=True)

    p = _stage_parser(sub, "segment-chunk", "foreground masks of one chunk, stable in time (.npz)", "segment_chunk")
    p.add_argument("frames")
    S.add_setting_options(p, "device")  # where SAM runs: the job's device
    p.add_argument("--threads", type=int, default=None, help="torch/OpenCV threads (the job's threads)")
    p.add_argument("-o", "--output", required=True)

    p = _stage_parser(sub, "flow-span", "flow-chunk for every chunk of a span, in one process: a folder of "
                      "NNNN.npz (resumable)", "flow_chunk")
    _span_arguments(p, "the span's folder of frames (extract-frames)")

    p = _stage_parser(sub, "segment-span", "segment-chunk for every chunk of a span, in one process: a folder of "
                      "NNNN.npz (resumable)", "segment_chunk")
    _span_arguments(p, "the span's folder of frames (extract-frames)")
    S.add_setting_options(p, "device")  # where SAM runs: the job's device
    p.add_argument("--cuts", help="the content's cuts.tsv (detect-cuts): masks are not carried across a cut")
    p.add_argument("--foreground", help="write each chunk's foreground share here (TSV), for evaluate")

    p = _stage_parser(sub, "stylize-span", "stylize-chunk for every chunk of a span, in one process (one model "
                      "load): a folder of NNNN.npy (resumable chunk by chunk)", "stylize_chunk")
    _span_arguments(p, "the span's folder of frames (extract-frames)")
    p.add_argument("--flows", help="the span's folder of flows (flow-span), for temporal: true")
    p.add_argument("--previous", help="the previous span's folder of stylized chunks, for chunk_chain: true")
    p.add_argument("--masks", help="method segmented: the span's folder of masks (segment-span)")
    p.add_argument("--decoder", help="method arbitrary, arbitrary_network adain: the job's trained decoder "
                                     "(train-arbitrary), used when adain_decoder is empty")
    p.add_argument("--shot-networks", help="method propagate: the job's shots table (train-propagate)")
    for name in ("schedule", "keyframes", "keyframe-dir"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--cuts", help="the content's cuts.tsv (detect-cuts): each shot starts afresh")
    p.add_argument("--job", help="the job's name, for messages (default: the folder above the output's)")

    p = _stage_parser(sub, "stylize-chunk", "stylize one chunk's frames -> .npy (lossless)", "stylize_chunk")
    p.add_argument("frames")
    p.add_argument("--flows", help="the chunk's flow file (flow-chunk), for temporal: true")
    p.add_argument("--previous", help="the previous chunk's stylized file, for chunk_chain: true")
    p.add_argument("--masks", help="method segmented: the chunk's masks (segment-chunk)")
    p.add_argument("--decoder", help="method arbitrary, arbitrary_network adain: the job's trained decoder "
                                     "(train-arbitrary), used when adain_decoder is empty")
    p.add_argument("--shot-networks", help="method propagate: the job's shots table (train-propagate)")
    for name in ("chunks", "schedule", "keyframes", "keyframe-dir"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--chunk", type=int, required=True)
    p.add_argument("--cuts", help="the content's cuts.tsv (detect-cuts): each shot starts afresh")
    p.add_argument("--job", help="the job's name, for messages (default: the folder above the output's)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (the job's threads)")
    p.add_argument("-o", "--output", required=True)

    p = _stage_parser(sub, "propagate-keyframes", "method propagate: pick each shot's keyframes and stylize them "
                      "(cached per keyframe) -> a keyframes table, the stylized keyframes beside it",
                      "propagate_keyframes")
    p.add_argument("frames", nargs="+", help="the job's span folders of frames (extract-frames)")
    for name in ("chunks", "cuts", "schedule", "keyframes", "keyframe-dir"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--threads", type=int, default=None, help="torch threads (the job's threads)")
    p.add_argument("-o", "--output", required=True)

    p = _stage_parser(sub, "train-propagate", "method propagate: train each shot's network on its stylized keyframes "
                      "(cached per shot, resumable) -> a shots table, the networks beside it", "train_propagate")
    p.add_argument("frames", nargs="+", help="the job's span folders of frames (extract-frames)")
    p.add_argument("--chunks", required=True)
    p.add_argument("--shot-keyframes", required=True, help="the job's keyframes table (propagate-keyframes)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (the job's threads)")
    p.add_argument("-o", "--output", required=True)

    p = _stage_parser(sub, "train-arbitrary", "train the arbitrary method's decoder on a job's frames and "
                      "keyframes (resumable) -> decoder.pth", "train_arbitrary")
    p.add_argument("--content", required=True, help="the job's content video")
    p.add_argument("--keyframes", required=True)
    p.add_argument("--keyframe-dir", required=True)
    S.add_setting_options(p, "device", "seed")  # the job's
    p.add_argument("--threads", type=int, default=None, help="torch threads (the job's threads)")
    p.add_argument("-o", "--output", required=True)

    p = _stage_parser(sub, "assemble", "join chunks, cross-fade overlaps, mux audio -> H.264 mp4", "assemble")
    p.add_argument("stylized", nargs="+", help="the stylized chunks (.npy) in order, or folders of them (spans)")
    p.add_argument("--meta", required=True)
    p.add_argument("--chunks", required=True)
    p.add_argument("--content", help="the content video, whose audio goes into the output")
    p.add_argument("-o", "--output", required=True)

    p = _stage_parser(sub, "evaluate", "warping error, style and content distance -> metrics.json", "evaluate")
    p.add_argument("stylized")
    for name in ("content", "meta", "schedule", "keyframes", "keyframe-dir", "per-frame"):
        p.add_argument(f"--{name}", required=True)
    S.add_setting_options(p, "size", "device")  # the job's: the keyframes are read at its processing size
    p.add_argument("--stage-times", help="the job's stage-times TSV: adds seconds per frame and peak memory")
    p.add_argument("--foreground", nargs="*", default=[], help="method segmented: the spans' foreground tables "
                                                              "(segment-span --foreground): adds the foreground share")
    p.add_argument("-o", "--output", required=True)

    p = _stage_parser(sub, "stage-times", "seconds per frame and peak memory of each stage from Snakemake "
                      "benchmark files (benchmarks/{rule}/...) -> TSV")
    p.add_argument("benchmarks", nargs="+")
    p.add_argument("--chunks", required=True, help="the job's chunks.tsv (gives the number of frames)")
    p.add_argument("-o", "--output", required=True)

    p = _stage_parser(sub, "deflicker", "a video through ffmpeg's deflicker filter (the deflicker baseline)",
                      "deflicker")
    p.add_argument("video")
    S.add_setting_options(p, "crf")  # the job's: the baseline is encoded as its output is
    p.add_argument("-o", "--output", required=True)

    p = _stage_parser(sub, "side-by-side", "input | output | current style, with the schedule's weights as a bar")
    p.add_argument("stylized")
    for name in ("content", "meta", "schedule", "keyframes", "keyframe-dir"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("-o", "--output", required=True)

    p = _stage_parser(sub, "contact-sheet", "evenly spaced frames, input above output -> PNG", "contact_sheet")
    p.add_argument("stylized")
    p.add_argument("--content", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("-o", "--output", required=True)

    p = _stage_parser(sub, "plot-per-frame", "warping error, style distance and style weights over time -> PNG")
    p.add_argument("per_frame", nargs="+", metavar="[LABEL=]PER_FRAME_TSV")
    p.add_argument("--schedule", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("-o", "--output", required=True)

    p = _stage_parser(sub, "compare", "the jobs on one content video side by side: frames, videos, plots, their "
                      "metrics relative to the input and to the baselines -> Markdown and one HTML page", "compare")
    p.add_argument("--entries", required=True,
                   help='JSON list of {"job", "kind": result|per-frame|deflicker, "path": metrics.json, '
                        '"perframe", "deflicker", "settings", and for the page "video": stylized.mp4, '
                        '"per_frame": per-frame.tsv, "plot": per-frame.png, "side_by_side": mp4}')
    p.add_argument("--title", default="Comparison")
    p.add_argument("--content", help="the content video (the input row of the frame grid)")
    p.add_argument("--meta", help="its meta.json (frame rate)")
    p.add_argument("--tally", help="the viewers' tally (artify assess --tally)")
    p.add_argument("--assess-page", help="the blind A/B page, linked from the comparison")
    p.add_argument("--answers-dir", default="assessments/", help="where the A/B page's answers go (named on the page)")
    p.add_argument("--markdown", required=True)
    p.add_argument("--html", required=True)

    p = _stage_parser(sub, "assess", "a blind pairwise (A/B) page of the jobs on one content video, with its key; "
                      "or with --tally, the win rates of the answers viewers saved from such pages", "assess")
    p.add_argument("videos", nargs="*", metavar="[JOB=]STYLIZED_MP4")
    p.add_argument("--content", help="the content video (shown above each pair)")
    p.add_argument("--meta", help="its meta.json (frame rate)")
    p.add_argument("--key", nargs="+", help="building: the key file to write (clip ids -> jobs); --tally: key "
                                            "files or folders of them")
    p.add_argument("--key-archive", help="a folder that also keeps the key, by sheet id")
    p.add_argument("--tally", nargs="+", metavar="CSV", help="answers sheets downloaded from the page")
    p.add_argument("-o", "--output", help="the page (HTML), or with --tally the tally (JSON)")

    p = _stage_parser(sub, "image", "stylize one picture with the gatys or arbitrary method (--method)",
                      "stylize_chunk")
    p.add_argument("content")
    p.add_argument("style")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("-o", "--output", required=True)
    return parser


# What to lower when a stage runs out of memory (its settings or options that size the work)
MEMORY_ADVICE = {"stylize-chunk": "lower `size`, or `batch_frames` with method arbitrary",
                 "train-arbitrary": "lower `train_batch` or `train_size`", "evaluate": "lower --size"}
MEMORY_ADVICE.update({"stylize-span": MEMORY_ADVICE["stylize-chunk"], "image": "lower --size"})


def out_of_memory(e: BaseException) -> bool:
    """Whether `e` is torch running out of memory: on a GPU (torch.OutOfMemoryError) or in the CPU's allocator
    (a RuntimeError that says so)."""
    torch = sys.modules.get("torch")
    return (torch is not None and isinstance(e, torch.OutOfMemoryError)) or (
        isinstance(e, RuntimeError) and "DefaultCPUAllocator: can't allocate memory" in str(e))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from artify.atomic import NotOurFolderError
    from artify.devices import DeviceError
    from artify.quality.assess import AnswersError
    from artify.media.pixels import NonFiniteError
    from artify.weights import WeightsError
    from artify.settings import ConfigError
    from artify.media.video import MediaError

    try:
        args.func(args)
    except (MediaError, ConfigError, AnswersError, OSError, NonFiniteError, WeightsError, DeviceError,
            NotOurFolderError) as e:
        print(f"artify {args.command}: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        if not out_of_memory(e):
            raise
        advice = MEMORY_ADVICE.get(args.command, "lower `size`")
        print(f"artify {args.command}: error: out of memory ({str(e).splitlines()[0][:200]}); {advice}",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
