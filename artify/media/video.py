"""FFmpeg input/output: find the binary, probe a video, read and write frames, copy audio.

Everything goes through ffmpeg-python with argument lists (never a shell string), so paths with spaces,
quotes or unicode work. ffprobe is not required: the `imageio-ffmpeg` binary ships without it, so
`probe` reads what `ffmpeg -v verbose` prints.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

from artify.atomic import atomic_path, atomic_write_text

# numpy and ffmpeg-python are imported where used: probe and audio extraction run as their own short
# commands, and their start-up is most of their cost.


class MediaError(RuntimeError):
    """A video or image that cannot be used; the message names the file and the problem."""


def ffmpeg_exe() -> str:
    """System ffmpeg if on PATH (or $ARTIFY_FFMPEG), else the binary from the imageio-ffmpeg wheel."""
    exe = os.environ.get("ARTIFY_FFMPEG") or shutil.which("ffmpeg")
    if exe:
        return exe
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass
class VideoMeta:
    path: str
    fps: str  # exact fraction, e.g. "24000/1001": the constant rate the pipeline works at
    width: int  # display size, after rotation
    height: int
    rotation: int  # degrees, as the display matrix says; frames are read already rotated
    frames: int  # frames at `fps`
    audio: bool
    audio_codec: str | None
    duration: float
    keyframes: list[int] = field(default_factory=list)  # frame indices where decoding can start; [] = unknown
    # "constant": one decoded frame per frame, as they are. "variable" (frame durations that vary: phone
    # video, animated GIFs): frames are resampled to `fps` by their timestamps (see `frame_selection`).
    timing: str = "constant"
    source_fps: str = ""  # the rate ffmpeg reports for the stream (its timestamps' rate; a GIF's is 100/1)
    source_frames: int = 0  # frames the stream decodes to
    longest_frame: float = 0.0  # seconds the longest frame is shown
    # Where frame 0 lies on the file's own clock (seconds, an exact fraction): the earlier of the picture's and
    # the audio's start. A picture that starts after its audio (MPEG-TS, camcorder .mts, MP4 without an edit
    # list) has its first frame held from there, as players show it, so the audio keeps its place.
    start: str = "0"
    # [frame, seconds for ffmpeg's -ss] for each keyframe after the first: the output frame that first shows
    # it, and the time whose seek decodes from it (see `_keyframe_seeks`: an MPEG-TS seek lands on any packet).
    seeks: list[list] = field(default_factory=list)

    @property
    def fps_fraction(self) -> Fraction:
        return Fraction(self.fps)

    def save(self, path) -> None:
        atomic_write_text(path, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path) -> "VideoMeta":
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (ValueError, TypeError) as e:  # not JSON, or not the fields `probe` writes
            raise MediaError(f"{path}: not a meta.json made by `artify probe` ({e})") from None


def run_ffmpeg(args, path) -> str:
    """Run ffmpeg with an argument list; a failure raises MediaError naming `path`."""
    proc = subprocess.run([ffmpeg_exe(), *args], capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise MediaError(f"{path}: ffmpeg failed: {lines[-1] if lines else 'no message'}")
    return proc.stderr


_FRAME_RATE = re.compile(r" fr:(\d+)/(\d+)")
_STREAM_VIDEO = re.compile(r"Stream #0:(\d+)[^:]*: Video: (\w+).*?, (\d+)x(\d+)\b")
_STREAM_AUDIO = re.compile(r"Stream #0:\d+[^:]*: Audio: (\w+).*")
_STREAM_START = re.compile(r", start (-?[\d.]+)")  # printed when a stream's start time is not 0
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees")
_DURATION = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")
_FILE_START = re.compile(r"Duration: [^\n]*?, start: (-?[\d.]+)")  # the clock ffmpeg's -ss counts from
_FORMAT = re.compile(r"Input #0, ([\w,]+), from")
# Formats without an index: ffmpeg seeks in them by a binary search over packets' decoding times.
UNINDEXED = {"mpegts", "mpeg"}
_TIME_BASE = re.compile(r"^#tb 0: (\d+)/(\d+)", re.M)
_PKT_KEY, _PKT_DISCARD = 0x1, 0x4  # AVPacket flags, as framecrc prints them
_NO_PTS = -(1 << 63)  # AV_NOPTS_VALUE


def probe(path) -> VideoMeta:
    """Exact fps, display size and rotation, frame count and timing, keyframes and audio presence of a video.

    One ffmpeg run lists the video packets without decoding them (`-c copy -f framecrc`: timestamps on the
    file's own clock and keyframe flags) and decodes only the first frame (for the exact frame rate as a
    fraction and to check the stream decodes). Where every packet lies within half a frame of its place at
    that rate, one packet is one frame: constant timing, at the stream's own rate. Otherwise the stream is
    decoded once for every frame's timestamp: frames still evenly spaced at that rate (field-coded video) are
    counted as they are; frames whose durations vary are variable timing, resampled to `constant_rate` (see
    `frame_selection`), the frame count covering the stream's time from `start` to its last frame's end.

    Frame 0 is at `start`, the earlier of the picture's and the audio's start: a picture that starts after
    its audio has its first frame held until it starts (as a player shows it), so the audio, copied as it
    is, keeps its place against the picture and none of it is lost.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "verbose", "-copyts", "-i", str(path),
                           "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "pipe:1",
                           "-map", "0:v:0", "-frames:v", "1", "-f", "null", "-"],
                          capture_output=True, text=True, errors="replace")
    err = proc.stderr
    if re.search(r"Input #0, (image2|\w+_pipe),", err):
        raise MediaError(f"{path}: not a video (a still image)")
    if "Invalid data found" in err or "could not find codec" in err.lower() or "moov atom not found" in err:
        raise MediaError(f"{path}: corrupt or not a media file")
    if proc.returncode != 0 and re.search(r"matches no streams", err):
        raise MediaError(f"{path}: not a video (no video stream found)")
    video = _STREAM_VIDEO.search(err)
    rate = _FRAME_RATE.search(err)
    if proc.returncode != 0 or not (video and rate):
        raise MediaError(f"{path}: could not read frames (corrupt or unsupported video)")
    source_fps = Fraction(int(rate.group(1)), int(rate.group(2)))
    fps, timing, longest = source_fps, "constant", 1 / source_fps
    audio = _STREAM_AUDIO.search(err)
    file_start = Fraction(found.group(1)) if (found := _FILE_START.search(err)) else Fraction(0)
    packet_tb, packets = _packets(proc.stdout)  # (pts, dts, duration, key) in ticks of packet_tb, display order
    if packets and _evenly_spaced([pts for pts, *_ in packets], packet_tb, fps):
        source_frames, first_shown = len(packets), packets[0][0] * packet_tb
        start = _start(first_shown, audio, file_start)
        frames = _frame_at(first_shown, start, fps) + source_frames  # the first picture held until it starts
    else:
        tb, decoded = _decoded_frame_times(path)
        frames = source_frames = len(decoded)
        if not frames:
            raise MediaError(f"{path}: could not read frames (corrupt or unsupported video)")
        first_shown = decoded[0][0] * tb
        start = _start(first_shown, audio, file_start)
        frames += _frame_at(first_shown, start, fps)
        if not _evenly_spaced([pts for pts, _ in decoded], tb, fps):
            timing, fps = "variable", constant_rate([dur * tb for _, dur in decoded])
            longest = max(dur for _, dur in decoded) * tb
            last_duration = decoded[-1][1] or sorted(dur for _, dur in decoded)[source_frames // 2]
            end = (decoded[-1][0] + last_duration) * tb  # the end of the last frame: the video's end
            frames = int((end - start) * fps + Fraction(1, 2))
    unindexed = bool(found := _FORMAT.search(err)) and bool(UNINDEXED & set(found.group(1).split(",")))
    seeks = _keyframe_seeks(packets, packet_tb, start, fps, file_start, frames, unindexed)
    width, height = int(video.group(3)), int(video.group(4))
    rot = _ROTATION.search(err)
    rotation = int(round(float(rot.group(1)))) % 360 if rot else 0
    if rotation in (90, 270):
        width, height = height, width
    dur = _DURATION.search(err)
    duration = int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else 0.0
    keyframes = sorted({frame for frame, _ in seeks} | ({_frame_at(packets[0][0] * packet_tb, start, fps)}
                                                         if packets and packets[0][3] else set()))
    return VideoMeta(str(path), _fraction_text(fps), width, height, rotation, frames, audio is not None,
                     audio.group(1) if audio else None, duration, keyframes, timing, _fraction_text(source_fps),
                     source_frames, round(float(longest), 6), _fraction_text(start), seeks)


def _start(video_start: Fraction, audio, file_start: Fraction) -> Fraction:
    """Where frame 0 lies on the file's clock: the picture's start, or the audio's where that is earlier (a
    stream start that ffmpeg leaves out of its log is 0; in a file that starts later, an unknown one)."""
    if audio is None:
        return video_start
    printed = _STREAM_START.search(audio.group(0))
    audio_start = Fraction(printed.group(1)) if printed else Fraction(0) if file_start == 0 else video_start
    return min(video_start, audio_start)


def _frame_at(seconds: Fraction, start: Fraction, fps: Fraction) -> int:
    """The output frame that first shows a picture starting at `seconds` on the file's clock."""
    return int((seconds - start) * fps + Fraction(1, 2))


def _keyframe_seeks(packets, tb: Fraction, start: Fraction, fps: Fraction, file_start: Fraction, frames: int,
                    unindexed: bool) -> list[list]:
    """[frame, -ss seconds] for each keyframe but the stream's first: the output frame that first shows it, and
    the time (counted from the file's start, as -ss counts) a quarter frame after its timestamp in the seek's
    terms. An indexed file (MP4, Matroska) seeks to the last keyframe shown by then. An unindexed one
    (MPEG-TS, MPEG-PS) seeks to the last packet of any kind decoded by then, so its time is the keyframe's
    decoding time: a quarter frame later, no packet after the keyframe (whose data the keyframe precedes) is
    due yet, while by its display time the packets after it (B-frames) are, and decoding from those would
    start at the next keyframe."""
    if not packets:
        return []
    first_dts = min(dts for _, dts, _, _ in packets)
    margin = 1 / (4 * fps)
    seeks = {}
    for pts, dts, _, key in sorted(packets, key=lambda p: p[1]):
        frame = _frame_at(pts * tb, start, fps)
        if key and dts > first_dts and frame < frames and frame not in seeks:
            seeks[frame] = round(float((dts if unindexed else pts) * tb - file_start + margin), 6)
    return [[frame, seconds] for frame, seconds in sorted(seeks.items())]


def _fraction_text(rate: Fraction) -> str:
    return f"{rate.numerator}/{rate.denominator}"


def _packets(framecrc: str) -> tuple[Fraction, list[tuple[int, int, int, bool]]]:
    """The time base and the shown video packets of framecrc's list: (pts, dts, duration) in ticks of the time
    base and the keyframe flag, in display order; no packets when the list lacks timestamps."""
    tb = _TIME_BASE.search(framecrc)
    if tb is None:
        return Fraction(1), []
    packets = []
    for line in framecrc.splitlines():
        if not line.startswith("0,"):
            continue
        parts = [p.strip() for p in line.split(",")]
        flags = int(parts[6][2:], 16) if len(parts) > 6 and parts[6].startswith("F=") else _PKT_KEY
        if flags & _PKT_DISCARD:
            continue  # e.g. cut by an edit list: never shown
        pts, dts = int(parts[2]), int(parts[1])
        if pts == _NO_PTS:
            return Fraction(1), []
        packets.append((pts, pts if dts == _NO_PTS else dts, int(parts[3]), bool(flags & _PKT_KEY)))
    return Fraction(int(tb.group(1)), int(tb.group(2))), sorted(packets)


def _evenly_spaced(ticks: list[int], tb: Fraction, fps: Fraction) -> bool:
    """Whether frame i starts within half a frame of ticks[0] + i / fps, for every i (then each frame keeps its
    own place at that rate). In integers: |2 (t - t0) tb fps - 2 i| < 1, with tb fps = a / b."""
    a, b = (tb * fps).numerator, (tb * fps).denominator
    return all(abs(2 * (t - ticks[0]) * a - 2 * i * b) < b for i, t in enumerate(ticks))


def _decoded_frame_times(path) -> tuple[Fraction, list[tuple[int, int]]]:
    """The time base and every decoded frame's (pts, duration) in its ticks (on the file's own clock, as probe's
    packets), by decoding the stream."""
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-copyts", "-i", str(path),
                          "-map", "0:v:0",
                          "-fps_mode", "passthrough", "-enc_time_base", "demux", "-f", "framecrc", "pipe:1"],
                         capture_output=True, text=True, errors="replace")
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines()
        raise MediaError(f"{path}: ffmpeg could not decode: {lines[-1] if lines else 'no message'}")
    tb = _TIME_BASE.search(out.stdout)
    rows = sorted((int(p[2]), int(p[3])) for p in (ln.split(",") for ln in out.stdout.splitlines()
                                                     if ln.startswith("0,")))
    return (Fraction(int(tb.group(1)), int(tb.group(2))) if tb else Fraction(1)), rows


# Rates a resampled variable-rate video snaps to when its frames' rate is within 5 % of one.
STANDARD_RATES = [Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30),
                  Fraction(48), Fraction(50), Fraction(60000, 1001), Fraction(60), Fraction(120)]


def constant_rate(durations: list[Fraction]) -> Fraction:
    """The constant rate a variable-rate video is resampled to: one over its 10th-percentile frame duration
    (only frames shorter than nine in ten of the others can share an output frame and be dropped; longer
    frames are repeated), snapped to the nearest standard rate within 5 % (timestamps jitter), limited to
    1-120 fps."""
    shown = sorted(d for d in durations if d > 0)
    if not shown:
        raise ValueError("no frame durations")
    rate = 1 / shown[len(shown) // 10]
    nearest = min(STANDARD_RATES, key=lambda r: abs(r - rate))
    rate = nearest if abs(nearest - rate) <= rate / 20 else rate.limit_denominator(1001)
    return min(max(rate, Fraction(1)), Fraction(120))


def frame_selection(meta: VideoMeta, first: int, stop: int) -> tuple[dict, list[tuple[str, dict]]]:
    """ffmpeg input options (as ffmpeg-python takes them) and filters that give frames [first, stop) of the
    probed video at meta.fps: frame n is the picture shown at meta.start + n / fps on the file's clock,
    rounded to the nearest output frame (ffmpeg's `fps` filter, round=near: a picture starting within half an
    output frame of that time is shown from frame n). Before the first picture, the first is held. A
    constant-rate video keeps its own frames, one each.

    Timestamps stay the file's own (-copyts), shifted so that meta.start is 0, so the choice of every frame
    does not depend on where a read starts; the read starts at the last keyframe at or before `first`
    (meta.seeks: seeking by time lands on any packet of an MPEG-TS, whose frames up to the next keyframe then
    never decode), and `trim` keeps frames from exactly `first` by their output timestamp.
    """
    seek = next((seconds for frame, seconds in reversed(meta.seeks) if frame <= first), None)
    options = {"copyts": None} | ({} if seek is None else {"ss": f"{seek:.6f}", "noaccurate_seek": None})
    start = Fraction(meta.start)
    fps = {"fps": meta.fps, "round": "near"} | ({"start_time": 0} if seek is None else {})
    return options, [("setpts", {"expr": f"PTS-round({start.numerator}/{start.denominator}/TB)"}), ("fps", fps),
                     ("trim", {"start_pts": first, "end_pts": stop})]


def option_args(options: dict) -> list[str]:
    """ffmpeg-python's options as command-line arguments: {"copyts": None, "ss": 2} -> ["-copyts", "-ss", "2"]."""
    return [a for k, v in options.items() for a in (f"-{k}", *([] if v is None else [str(v)]))]


def filter_text(filters: list[tuple[str, dict]]) -> str:
    """Filters as a filtergraph chain: [("fps", {"fps": 24})] -> "fps=fps=24"."""
    return ",".join(f"{name}=" + ":".join(f"{k}={v}" for k, v in opts.items()) for name, opts in filters)


def processing_size(width: int, height: int, size: int) -> tuple[int, int]:
    """Scale so the long side is `size` (0 = keep), both sides even (yuv420p needs it)."""
    if size <= 0:
        size = max(width, height)
    scale = size / max(width, height)
    w = max(2, int(round(width * scale / 2)) * 2)
    h = max(2, int(round(height * scale / 2)) * 2)
    return w, h


def read_frames(path, start: int = 0, count: int | None = None, size: tuple[int, int] | None = None,
                fps: Fraction | None = None, meta: VideoMeta | None = None) -> np.ndarray:
    """Frames [start, start+count) of a video or a .npy frames file as uint8 RGB (N, H, W, 3), resized to
    `size` (w, h) when given (videos only).

    Seeking uses the frame's timestamp (needs `fps`) and then selects by frame number from there, which is
    exact for constant-frame-rate video starting at 0 (what the pipeline writes); reading from 0 needs neither.
    `meta` (the video's probe) gives the frames as the pipeline numbers them (`frame_selection`). With
    `count`, exactly that many frames come back or MediaError is raised (never a silently shorter read).
    """
    import ffmpeg
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    if path.suffix == ".npy":  # a chunk's extracted frames (`artify.media.chunks.extract_frames`)
        if size is not None:
            raise ValueError(f"{path}: extracted frames are already at the processing size")
        frames = np.load(path, mmap_mode="r")
        return _exactly(np.array(frames[start: None if count is None else start + count]), path, start, count)
    input_args, filters = {}, []
    if meta is not None:
        input_args, filters = frame_selection(meta, start, meta.frames if count is None else start + count)
    elif start > 0:
        if fps is None:
            raise ValueError("seeking needs the video's fps")
        # Seek to half a frame before the wanted one: ffmpeg then starts on exactly that frame.
        input_args["ss"] = f"{float((start - Fraction(1, 2)) / fps):.6f}"
    stream = ffmpeg.input(str(path), **input_args).video
    for name, options in filters:
        stream = stream.filter(name, **options)
    if size is not None:
        # the same filter chain as extract_chunk, so both give identical pixels
        stream = stream.filter("scale", size[0], size[1], flags="bicubic").filter("format", "rgb24")
    # passthrough: each decoded frame once. With a filter graph after an input seek ffmpeg's default (cfr
    # for rawvideo) repeats the first frame to fill the half frame the seek starts before it.
    out_args = {"format": "rawvideo", "pix_fmt": "rgb24", "fps_mode": "passthrough"}
    if count is not None:
        out_args["frames:v"] = count
    try:
        raw, _ = ffmpeg.output(stream, "pipe:", **out_args).run(cmd=ffmpeg_exe(), capture_stdout=True,
                                                                   capture_stderr=True)
    except ffmpeg.Error as e:
        last = e.stderr.decode(errors="replace").strip().splitlines()
        raise MediaError(f"{path}: ffmpeg could not decode: {last[-1] if last else ''}") from None
    if size is None:
        meta = meta or probe(path)
        size = (meta.width, meta.height)
    frame_bytes = size[0] * size[1] * 3
    n, rest = divmod(len(raw), frame_bytes)
    if rest:
        raise MediaError(f"{path}: ffmpeg gave a partial frame after {n} frames from frame {start}")
    return _exactly(np.frombuffer(raw, np.uint8).reshape(n, size[1], size[0], 3), path, start, count)


def _exactly(frames: np.ndarray, path, start: int, count: int | None) -> np.ndarray:
    """A short read is an error, never fewer frames: a caller that asked for frames [start, start + count)
    must not go on with a shorter video as if it were the whole."""
    if count is not None and len(frames) != count:
        raise MediaError(f"{path}: {count} frames wanted from frame {start}, but only {len(frames)} could be "
                         f"read (the video ends or is damaged at frame {start + len(frames)})")
    return frames


def npy_header(shape: tuple[int, ...]) -> bytes:
    """The header of a .npy file (format 1.0) of uint8 C-order data of this shape, as numpy writes it: written
    without importing numpy, which costs frame extraction 60 ms of a 0.6 s job at the default size."""
    text = "{'descr': '|u1', 'fortran_order': False, 'shape': %r, }" % (tuple(shape),)
    text += " " * (-(10 + len(text) + 1) % 64) + "\n"  # padded so the data starts 64-byte aligned
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")


def save_frames(path, frames, count: int) -> None:
    """Exactly `count` frames as one .npy file, uint8 RGB (count, H, W, 3): written as they come (an iterable
    is never all in memory) and atomically, so a failed producer leaves no file.

    The stylized chunks are kept in this form: assemble reads them with no decoding at all (Ut Video, the
    fastest lossless codec measured, cost as much as the x264 encode at 256 px), at 3 bytes a pixel.
    """
    import numpy as np

    path = Path(path)
    n, shape = 0, None
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            for frame in frames:
                frame = np.asarray(frame)
                if shape is None:
                    shape = frame.shape
                    if frame.ndim != 3 or shape[2] != 3:
                        raise ValueError(f"{path}: frames must be (H, W, 3), got {shape}")
                    f.write(npy_header((count, *shape)))
                if frame.shape != shape:
                    raise MediaError(f"{path}: frame size changed from {shape[1]}x{shape[0]} to "
                                     f"{frame.shape[1]}x{frame.shape[0]}")
                if n == count:
                    raise MediaError(f"{path}: more than the {count} frames planned")
                f.write(np.ascontiguousarray(frame, dtype=np.uint8).data)
                n += 1
        if n != count:
            raise MediaError(f"{path}: {n} frames written, {count} planned")


def write_frames_lossless(path, frames: np.ndarray, fps: Fraction) -> None:
    """Lossless RGB video (Ut Video, planar RGB) in Matroska, exact frame count; written atomically. For
    frames that ffmpeg filters must read (the benchmarks' deflicker); the pipeline's own frames are .npy."""
    _write(path, frames, fps, vcodec="utvideo", pix_fmt="gbrp", extra={})


def write_frames_h264(path, frames, fps: Fraction, crf: int = 18, audio=None, audio_copy=True,
                      duration: float | None = None, audio_start: Fraction | None = None) -> None:
    """H.264 yuv420p (plays everywhere), optional audio muxed from `audio`; written atomically. With
    `audio_start` (the probe's `start`: where frame 0 lies on `audio`'s clock), the audio keeps its place
    against the frames; without, it starts with them."""
    _write(path, frames, fps, vcodec="libx264", pix_fmt="yuv420p",
           extra={"crf": crf, "preset": "medium", "movflags": "+faststart"}, audio=audio,
           audio_copy=audio_copy, duration=duration, audio_start=audio_start)


def _write(path, frames, fps, vcodec, pix_fmt, extra, audio=None, audio_copy=True, duration=None, audio_start=None):
    """`frames` is an array (N, H, W, 3) or an iterable of (H, W, 3) arrays (streamed, never all in memory)."""
    import ffmpeg
    import numpy as np

    path = Path(path)
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise MediaError(f"{path}: no frames to write")
    h, w = first.shape[:2]
    video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{w}x{h}", framerate=str(fps))
    streams = [video]
    out_args = {"vcodec": vcodec, "pix_fmt": pix_fmt, "r": str(fps), **extra}
    if audio is not None:
        # the first audio stream, of a video or an audio file; on its own clock (-copyts) moved so that
        # audio_start is 0, where the frames start: left to ffmpeg, where the audio starts would depend on the
        # streams it reads (an MPEG-TS's audio alone starts at 0)
        shift = {} if audio_start is None else {"itsoffset": f"{-float(audio_start):.6f}"}
        streams.append(ffmpeg.input(str(audio), **shift)["a:0"])
        out_args["acodec"] = "copy" if audio_copy else "aac"
        if not audio_copy:
            out_args["audio_bitrate"] = "192k"
        if duration is not None:
            out_args["t"] = f"{float(duration):.6f}"
    with atomic_path(path) as tmp:  # removed again when the producer or ffmpeg fails
        output = ffmpeg.output(*streams, str(tmp), **out_args).overwrite_output()
        if audio is not None and audio_start is not None:
            output = output.global_args("-copyts")
        proc = (output.run_async(cmd=ffmpeg_exe(), pipe_stdin=True, pipe_stderr=True, quiet=False))
        _widen_pipe(proc.stdin)
        import threading

        err_chunks = []
        reader = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)
        reader.start()
        try:
            for frame in _chain(first, it):
                if frame.shape[:2] != (h, w):
                    raise MediaError(f"{path}: frame size changed from {w}x{h} to {frame.shape[1]}x{frame.shape[0]}")
                proc.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).data)  # no copy when already contiguous
        except BrokenPipeError:
            pass
        except BaseException:
            # the producer failed (or was interrupted): nothing half-written may look finished
            proc.stdin.close()
            proc.kill()
            proc.wait()
            reader.join()
            raise
        finally:
            if not proc.stdin.closed:
                proc.stdin.close()
            rc = proc.wait()
            reader.join()
        if rc != 0:
            last = b"".join(err_chunks).decode(errors="replace").strip().splitlines()
            raise MediaError(f"{path}: ffmpeg could not write: {last[-1] if last else ''}")


def _widen_pipe(pipe) -> None:
    """Give a pipe 1 MiB of buffer instead of 64 KiB: a 720p frame then crosses in a few writes instead of
    forty-odd, each a wake-up of the other process."""
    import fcntl

    try:
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
    except OSError:  # not a pipe, or a lower system cap (/proc/sys/fs/pipe-max-size): only slower
        pass


def _chain(first, rest):
    yield first
    yield from rest


# Audio codecs that an .mp4 can carry as they are; anything else is re-encoded to AAC.
MP4_AUDIO = {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}


def load_image(path, long_side: int | None = None, enlarge: bool = True) -> np.ndarray:
    """An image file as uint8 RGB (EXIF rotation applied), resized so its long side is `long_side`
    (only ever shrunk when `enlarge` is false)."""
    import numpy as np
    from PIL import Image, ImageOps

    from artify.media.pixels import resize_long_side

    try:
        with Image.open(path) as im:
            rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (OSError, ValueError) as e:
        raise MediaError(f"{path}: not a readable image ({e})") from None
    if long_side and (enlarge or max(rgb.shape[:2]) > long_side):
        rgb = resize_long_side(rgb, long_side)
    return rgb
