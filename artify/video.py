"""FFmpeg input/output: find the binary, probe a video, read and write frames, copy audio.

Everything goes through ffmpeg-python with argument lists (never a shell string), so paths with spaces,
quotes or unicode work. ffprobe is not required: the `imageio-ffmpeg` binary ships without it, so
`probe` reads what `ffmpeg -v verbose` prints.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

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
    fps: str  # exact fraction, e.g. "24000/1001"
    width: int  # display size, after rotation
    height: int
    rotation: int  # degrees, as the display matrix says; frames are read already rotated
    frames: int
    audio: bool
    audio_codec: str | None
    duration: float
    keyframes: list[int] = field(default_factory=list)  # frame indices where decoding can start; [] = unknown

    @property
    def fps_fraction(self) -> Fraction:
        return Fraction(self.fps)

    def save(self, path) -> None:
        atomic_write_text(path, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path) -> "VideoMeta":
        return cls(**json.loads(Path(path).read_text()))


def atomic_write_text(path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def tmp_path(path) -> Path:
    """A sibling name to write to before renaming into place, keeping the extension for ffmpeg."""
    path = Path(path)
    return path.with_name(f".tmp.{path.name}")


def run_ffmpeg(args, path) -> str:
    """Run ffmpeg with an argument list; a failure raises MediaError naming `path`."""
    proc = subprocess.run([ffmpeg_exe(), *args], capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise MediaError(f"{path}: ffmpeg failed: {lines[-1] if lines else 'no message'}")
    return proc.stderr


_FRAME_RATE = re.compile(r" fr:(\d+)/(\d+)")
_STREAM_VIDEO = re.compile(r"Stream #0:(\d+)[^:]*: Video: (\w+).*?, (\d+)x(\d+)\b")
_STREAM_AUDIO = re.compile(r"Stream #0:\d+[^:]*: Audio: (\w+)")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees")
_FRAME_COUNT = re.compile(r"Output stream #0:0 \(video\): (\d+) frames encoded")
_DURATION = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")
_TIME_BASE = re.compile(r"^#tb 0: (\d+)/(\d+)", re.M)
_PKT_KEY, _PKT_DISCARD = 0x1, 0x4  # AVPacket flags, as framecrc prints them


def probe(path) -> VideoMeta:
    """Exact fps, display size and rotation, frame count, keyframes and audio presence of a video.

    One ffmpeg run lists the video packets without decoding them (`-c copy -f framecrc`: timestamps and
    keyframe flags) and decodes only the first frame (for the exact frame rate as a fraction and to check
    the stream decodes). For constant-frame-rate video one packet is one frame; where the packets' count
    and their time span at that rate disagree (field-coded or variable-rate video), the frames are counted
    by decoding the whole stream instead.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "verbose", "-i", str(path),
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
    fps = Fraction(int(rate.group(1)), int(rate.group(2)))
    frames, keyframes = _count_packets(proc.stdout, fps)
    if frames is None:
        frames, keyframes = _decoded_frame_count(path), []
    if frames == 0:
        raise MediaError(f"{path}: could not read frames (corrupt or unsupported video)")
    width, height = int(video.group(3)), int(video.group(4))
    rot = _ROTATION.search(err)
    rotation = int(round(float(rot.group(1)))) % 360 if rot else 0
    if rotation in (90, 270):
        width, height = height, width
    audio = _STREAM_AUDIO.search(err)
    dur = _DURATION.search(err)
    duration = int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else 0.0
    return VideoMeta(str(path), str(fps) if fps.denominator != 1 else f"{fps.numerator}/1", width, height,
                     rotation, frames, audio is not None, audio.group(1) if audio else None, duration, keyframes)


def _count_packets(framecrc: str, fps: Fraction) -> tuple[int | None, list[int]]:
    """Frame count and keyframe indices (display order) from framecrc's packet list; None when the packets
    do not map one-to-one onto frames at `fps`."""
    tb = _TIME_BASE.search(framecrc)
    packets = []  # (pts, duration, key)
    for line in framecrc.splitlines():
        if not line.startswith("0,"):
            continue
        parts = [p.strip() for p in line.split(",")]
        flags = int(parts[6][2:], 16) if len(parts) > 6 and parts[6].startswith("F=") else _PKT_KEY
        if flags & _PKT_DISCARD:
            continue  # e.g. cut by an edit list: never shown
        packets.append((int(parts[2]), int(parts[3]), bool(flags & _PKT_KEY)))
    if not packets or tb is None:
        return None, []
    packets.sort()
    span = (packets[-1][0] + packets[-1][1] - packets[0][0]) * Fraction(int(tb.group(1)), int(tb.group(2)))
    if abs(span * fps - len(packets)) > 1:
        return None, []
    return len(packets), [i for i, (_, _, key) in enumerate(packets) if key]


def _decoded_frame_count(path) -> int:
    err = run_ffmpeg(["-hide_banner", "-nostdin", "-v", "verbose", "-nostats", "-i", str(path), "-map", "0:v:0",
                      "-f", "null", "-"], path)
    counts = _FRAME_COUNT.findall(err)
    return int(counts[-1]) if counts else 0


def processing_size(width: int, height: int, size: int) -> tuple[int, int]:
    """Scale so the long side is `size` (0 = keep), both sides even (yuv420p needs it)."""
    if size <= 0:
        size = max(width, height)
    scale = size / max(width, height)
    w = max(2, int(round(width * scale / 2)) * 2)
    h = max(2, int(round(height * scale / 2)) * 2)
    return w, h


def read_frames(path, start: int = 0, count: int | None = None, size: tuple[int, int] | None = None,
                fps: Fraction | None = None) -> np.ndarray:
    """Frames [start, start+count) of a video or a .npy frames file as uint8 RGB (N, H, W, 3), resized to
    `size` (w, h) when given (videos only).

    Seeking uses the frame's timestamp (needs `fps`) and then selects by frame number from there, which is
    exact for constant-frame-rate video; reading from 0 needs neither. With `count`, exactly that many frames
    come back or MediaError is raised (never a silently shorter read).
    """
    import ffmpeg
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    if path.suffix == ".npy":  # a chunk's extracted frames (`artify.chunks.extract_frames`)
        if size is not None:
            raise ValueError(f"{path}: extracted frames are already at the processing size")
        frames = np.load(path, mmap_mode="r")
        return _exactly(np.array(frames[start: None if count is None else start + count]), path, start, count)
    input_args = {}
    if start > 0:
        if fps is None:
            raise ValueError("seeking needs the video's fps")
        # Seek to half a frame before the wanted one: ffmpeg then starts on exactly that frame.
        input_args["ss"] = f"{float((start - Fraction(1, 2)) / fps):.6f}"
    stream = ffmpeg.input(str(path), **input_args).video
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
        meta = probe(path)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    n, shape = 0, None
    try:
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
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_frames_lossless(path, frames: np.ndarray, fps: Fraction) -> None:
    """Lossless RGB video (Ut Video, planar RGB) in Matroska, exact frame count; written atomically. For
    frames that ffmpeg filters must read (the benchmarks' deflicker); the pipeline's own frames are .npy."""
    _write(path, frames, fps, vcodec="utvideo", pix_fmt="gbrp", extra={})


def write_frames_h264(path, frames, fps: Fraction, crf: int = 18, audio=None, audio_copy=True,
                      duration: float | None = None) -> None:
    """H.264 yuv420p (plays everywhere), optional audio muxed from `audio`; written atomically."""
    _write(path, frames, fps, vcodec="libx264", pix_fmt="yuv420p",
           extra={"crf": crf, "preset": "medium", "movflags": "+faststart"}, audio=audio,
           audio_copy=audio_copy, duration=duration)


def _write(path, frames, fps, vcodec, pix_fmt, extra, audio=None, audio_copy=True, duration=None):
    """`frames` is an array (N, H, W, 3) or an iterable of (H, W, 3) arrays (streamed, never all in memory)."""
    import ffmpeg
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise MediaError(f"{path}: no frames to write")
    h, w = first.shape[:2]
    video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{w}x{h}", framerate=str(fps))
    streams = [video]
    out_args = {"vcodec": vcodec, "pix_fmt": pix_fmt, "r": str(fps), **extra}
    if audio is not None:
        streams.append(ffmpeg.input(str(audio))["a:0"])  # the first audio stream, of a video or an audio file
        out_args["acodec"] = "copy" if audio_copy else "aac"
        if not audio_copy:
            out_args["audio_bitrate"] = "192k"
        if duration is not None:
            out_args["t"] = f"{float(duration):.6f}"
    proc = (ffmpeg.output(*streams, str(tmp), **out_args).overwrite_output()
            .run_async(cmd=ffmpeg_exe(), pipe_stdin=True, pipe_stderr=True, quiet=False))
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
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if not proc.stdin.closed:
            proc.stdin.close()
        rc = proc.wait()
        reader.join()
    if rc != 0:
        tmp.unlink(missing_ok=True)
        last = b"".join(err_chunks).decode(errors="replace").strip().splitlines()
        raise MediaError(f"{path}: ffmpeg could not write: {last[-1] if last else ''}")
    os.replace(tmp, path)


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
    import cv2
    import numpy as np
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (OSError, ValueError) as e:
        raise MediaError(f"{path}: not a readable image ({e})") from None
    h, w = rgb.shape[:2]
    if long_side and (enlarge or max(h, w) > long_side):
        scale = long_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    return rgb
