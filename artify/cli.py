"""`artify` command line: every pipeline stage as a subcommand, mirroring the library functions.

The Snakemake rules call these same subcommands, so a stage runs the same way by hand, in a test or
from a rule. Errors about inputs print one line naming the file and the problem, and exit 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path

from artify import settings as S


def _stage_parser(sub, name: str, help: str, stage: str | None = None):
    p = sub.add_parser(name, help=help, description=help)
    if stage:
        S.add_options(p, stage)
    return p


def cmd_demo(a):
    from artify.demo import make_demo

    make_demo(a.content, a.style, seconds=a.seconds)


def cmd_probe(a):
    from artify.video import probe

    meta = probe(a.video)
    meta.save(a.output)
    print(json.dumps(meta.__dict__))


def cmd_plan_chunks(a):
    from artify.chunks import plan_chunks, write_chunks
    from artify.video import VideoMeta

    o = S.from_args("plan_chunks", a)
    chunks = plan_chunks(VideoMeta.load(a.meta).frames, o["chunk_frames"], o["chunk_overlap"], o["max_frames"])
    write_chunks(chunks, a.output)
    print(f"{len(chunks)} chunks over {chunks['stop'].iloc[-1]} frames")


def _size(meta, size: int):
    from artify.video import processing_size

    return processing_size(meta.width, meta.height, size)


def cmd_extract_chunk(a):
    from artify.chunks import extract_chunk
    from artify.video import VideoMeta

    meta = VideoMeta.load(a.meta)
    extract_chunk(a.video, a.chunks, a.chunk, _size(meta, a.size), Fraction(meta.fps), a.output)


def cmd_extract_audio(a):
    from artify.video import extract_audio

    print(extract_audio(a.video, a.output))


def cmd_detect_scenes(a):
    from artify.scenes import detect_scenes

    o = S.from_args("detect_scenes", a)
    scenes = detect_scenes(a.style, a.output, detector=o["scene_detector"], threshold=o["scene_threshold"],
                           min_scene_frames=o["min_scene_frames"])
    print(f"{len(scenes)} scenes")


def cmd_select_keyframes(a):
    from artify.keyframes import contact_sheet, select_keyframes

    o = S.from_args("select_keyframes", a)
    keyframes = select_keyframes(a.style, a.scenes, a.out_dir, a.output, samples_per_scene=o["keyframe_samples"],
                                 blur_threshold=o["blur_threshold"], merge_threshold=o["merge_threshold"],
                                 max_keyframes=o["max_keyframes"])
    if a.contact_sheet:
        contact_sheet(a.output, a.out_dir, a.contact_sheet)
    print(f"{len(keyframes)} keyframes")


def cmd_plan_schedule(a):
    from artify.schedule import plan_schedule, plot_schedule
    from artify.video import VideoMeta

    o = S.from_args("plan_schedule", a)
    meta = VideoMeta.load(a.meta)
    n = min(meta.frames, o["max_frames"]) if o["max_frames"] else meta.frames
    plan_schedule(a.keyframes, n, float(Fraction(meta.fps)), a.output, spread=o["schedule_spread"],
                  transition_seconds=o["transition_seconds"], curve=o["transition_curve"])
    if a.plot:
        plot_schedule(a.output, a.plot, float(Fraction(meta.fps)))


def cmd_stylize_chunk(a):
    from artify.stylize import stylize_chunk
    from artify.video import VideoMeta

    meta = VideoMeta.load(a.meta)
    stylize_chunk(a.frames, a.chunks, a.chunk, a.schedule, a.keyframes, a.keyframe_dir, a.output,
                  S.from_args("stylize_chunk", a), Fraction(meta.fps), threads=a.threads)


def cmd_assemble(a):
    from artify.assemble import assemble

    o = S.from_args("assemble", a)
    n = assemble(a.meta, a.chunks, a.stylized, a.output, audio_file=a.audio_file, crf=o["crf"], audio=o["audio"])
    print(f"{n} frames -> {a.output}")


def cmd_evaluate(a):
    from artify.evaluate import evaluate_job

    metrics = evaluate_job(a.content, a.stylized, a.meta, a.schedule, a.keyframes, a.keyframe_dir, a.output,
                           a.per_frame, size=a.size, device=a.device)
    print(json.dumps(metrics, indent=2))


def cmd_image(a):
    from artify.image import stylize_image

    stylize_image(a.content, a.style, a.output, S.from_args("stylize_chunk", a), size=a.size)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="artify", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _stage_parser(sub, "demo", "write the built-in demo's content clip and style video")
    p.add_argument("--content", required=True)
    p.add_argument("--style", required=True)
    p.add_argument("--seconds", type=float, default=3.0)
    p.set_defaults(func=cmd_demo)

    p = _stage_parser(sub, "probe", "exact fps, size, rotation, frame count and audio of a video -> meta.json")
    p.add_argument("video")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_probe)

    p = _stage_parser(sub, "plan-chunks", "split the frames into overlapping chunks -> chunks.tsv", "plan_chunks")
    p.add_argument("--meta", required=True)
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_plan_chunks)

    p = _stage_parser(sub, "extract-chunk", "decode one chunk's frames at the processing size (FFV1)", "extract_chunk")
    p.add_argument("video")
    p.add_argument("--meta", required=True)
    p.add_argument("--chunks", required=True)
    p.add_argument("--chunk", type=int, required=True)
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_extract_chunk)

    p = _stage_parser(sub, "extract-audio", "copy the audio stream (no re-encoding)")
    p.add_argument("video")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_extract_audio)

    p = _stage_parser(sub, "detect-scenes", "find the scenes of a style video -> scenes.tsv", "detect_scenes")
    p.add_argument("style")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_detect_scenes)

    p = _stage_parser(sub, "select-keyframes", "one representative frame per distinct style -> keyframes.tsv",
                      "select_keyframes")
    p.add_argument("style")
    p.add_argument("--scenes", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--contact-sheet")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_select_keyframes)

    p = _stage_parser(sub, "plan-schedule", "per-frame style weights with cross-fades -> schedule.tsv", "plan_schedule")
    p.add_argument("--keyframes", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--plot")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_plan_schedule)

    p = _stage_parser(sub, "stylize-chunk", "stylize one chunk's frames (lossless output)", "stylize_chunk")
    p.add_argument("frames")
    for name in ("meta", "chunks", "schedule", "keyframes", "keyframe-dir"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--chunk", type=int, required=True)
    p.add_argument("--threads", type=int, default=None, help="torch threads (the job's threads)")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_stylize_chunk)

    p = _stage_parser(sub, "assemble", "join chunks, cross-fade overlaps, mux audio -> H.264 mp4", "assemble")
    p.add_argument("stylized", nargs="+")
    p.add_argument("--meta", required=True)
    p.add_argument("--chunks", required=True)
    p.add_argument("--audio-file")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_assemble)

    p = _stage_parser(sub, "evaluate", "warping error, style and content distance -> metrics.json")
    p.add_argument("stylized")
    for name in ("content", "meta", "schedule", "keyframes", "keyframe-dir", "per-frame"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--device", default="auto")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_evaluate)

    p = _stage_parser(sub, "image", "stylize one picture with the gatys method", "stylize_chunk")
    p.add_argument("content")
    p.add_argument("style")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_image)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from artify.config import ConfigError
    from artify.video import MediaError

    try:
        args.func(args)
    except (MediaError, ConfigError, FileNotFoundError) as e:
        print(f"artify {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
