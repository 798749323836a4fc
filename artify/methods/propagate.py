"""Method propagate: keyframe propagation (Texler et al. 2020, "Interactive video stylization using few-shot
patch-based training", with EbSynth's carried keyframes, Jamriska et al. 2019).

Per shot: pick keyframes (`keyframe_indices`: the first and last frames, where the content moves away, through
style transitions), stylize them with the keyframe method as it would stylize each frame alone
(`stylize_keyframes`), carry their looks along the flow to every frame between them (`carried_keyframes`:
positions composed along the neighbouring frames' flows, sampled once, trusted where the frame still shows what
the keyframe showed, two keyframes' looks blended by time), and train a small image-to-image network on random
patches of (keyframe + guide channels) -> stylized keyframe (`train_network`, resumable, keyed by what it is
made from) to paint what no keyframe saw. Every frame of the shot is then the carried look where it is trusted
and the network's painting elsewhere (`apply_network`, batched). The training stage (`train_shots`) writes one
network file per shot with the shot's guides in it; the stylization only applies them, so a chunk needs
nothing from the chunks before it.
"""
from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from artify.atomic import atomic_path
from artify.devices import autocast
from artify.flow import DIS, FlowMethod, flow_to_torch, warp, warp_torch
from artify.features import to_tensor, to_uint8, vgg19
from artify.media.pixels import NonFiniteError
from artify.media.spans import file_digest
from artify.methods.registry import Shot, method_for
from artify.methods.train_arbitrary import _digest, _save_atomic, state_changes, state_path
from artify.settings import PropagateSettings, Settings

PERCEPTUAL_LAYERS = ("relu1_1", "relu2_1", "relu3_1")
PADDING = "zeros"


# ------------------------------------------------------------------------------------------- keyframes

def reliable_share(frame: np.ndarray, key: np.ndarray, flow: FlowMethod = DIS) -> float:
    """Share of `frame`'s pixels where `key`'s look could be carried: the flow back to `key` stays in the
    picture and lands where `key` shows what `frame` shows (`carried_trust`, the test the carried look itself
    passes). Not the forward-backward flow check: on flat or dark pictures (a fade, a night sky) that fails
    everywhere, as the flow is arbitrary there, and every frame of a fade became a keyframe (measured on the
    first seconds of Big Buck Bunny), where any flow carries a flat look well."""
    back = flow(frame, key)
    positions, inside = carried_positions([np.zeros_like(back), back])  # a chain of one step: key -> frame
    return float(carried_trust(frame[None], key, positions[1:], inside[1:]).mean())


def mix_departure(weights: np.ndarray, a: int, b: int) -> float:
    """How far the style schedule's mix `weights` (N, styles) departs, on the frames between a and b, from the
    straight mix of its weights at a and at b: the look carried between keyframes a and b mixes theirs by the
    distance in time (`carried_keyframes`), so that straight mix is what those frames show. The largest half
    L1 distance of the weights (0: the same mix, 1: a wholly other style)."""
    if b - a < 2:
        return 0.0
    to_b = ((np.arange(a + 1, b) - a) / (b - a))[:, None]
    straight = weights[a] * (1 - to_b) + weights[b] * to_b
    return float(np.abs(weights[a + 1:b] - straight).sum(1).max() / 2)


def keyframe_indices(frames: np.ndarray, min_reliable: float, every: int, flow: FlowMethod = DIS,
                     weights: np.ndarray | None = None, mix_tolerance: float = 1.0) -> list[int]:
    """The keyframes of one shot, counted from its first frame: frame 0; each frame the last keyframe's look
    could be carried to on less than `min_reliable` of its pixels (`reliable_share`: the content has moved
    away from it), or `every` frames after the last keyframe (0: no such limit); where the style schedule's
    mix `weights` (N, styles) would otherwise depart more than `mix_tolerance` from the straight mix between
    two keyframes (`mix_departure`: a style transition is followed, not cut through); and the shot's last
    frame, so every frame lies between two keyframes (a look carried one way only drifts: on 24 frames of
    moviepy_chaplin, style distance 4.0e9 at its keyframe to 1.1e10 at the shot's end)."""
    keys = [0]
    for t in range(1, len(frames)):
        if weights is not None and mix_departure(weights, keys[-1], t) > mix_tolerance:
            keys.append(t - 1)  # the last frame the straight mix still fitted
        if (every and t - keys[-1] >= every) or (
                min_reliable > 0 and reliable_share(frames[t], frames[keys[-1]], flow) < min_reliable):
            keys.append(t)
    if keys[-1] != len(frames) - 1:
        keys.append(len(frames) - 1)
    return keys


def stylize_keyframes(frames: np.ndarray, weights: np.ndarray, styles: list[np.ndarray], settings: Settings,
                      device, decoder=None) -> np.ndarray:
    """Each frame stylized by `propagate_keyframe_method` exactly as that method stylizes a frame alone
    (temporal off, its own settings), with the schedule's style mix `weights` (N, styles) at that frame."""
    method = replace(settings, method=settings.propagate_keyframe_method, temporal=False)
    out = []
    for frame, w in zip(frames, weights):
        torch.manual_seed(method.seed)  # as the chunk driver seeds a shot: each keyframe as if it stood alone
        out += list(_method_frames(method, frame[None], w[None], styles, device, decoder))
    return np.stack(out)


# What a keyframe method's output on one frame alone does not depend on: the settings between frames
BETWEEN_FRAMES = {"temporal", "temporal_weight", "chunk_chain", "min_reliable", "flow_blend", "flow_blend_long",
                  "blend_offset", "batch_frames"}


def one_frame_settings(settings: Settings) -> dict:
    """The keyframe method's settings that its stylization of one frame alone depends on (with the seed): the
    groups it reads (`Method.reads`), less what only matters between frames."""
    method = settings.propagate_keyframe_method
    names = [f.name for group in method_for(method).reads for f in fields(group) if f.name not in BETWEEN_FRAMES]
    return {"method": method, "seed": settings.seed, **{name: getattr(settings, name) for name in names}}


def _method_frames(settings: Settings, frames, weights, styles, device, decoder):
    """The keyframe method's own stylization of these frames (its registry entry point)."""
    stylize_shot = method_for(settings.method).stylizer(settings, device, {"decoder": decoder} if decoder else {})
    return stylize_shot(Shot(frames, weights, styles))


# ---------------------------------------------------------------------------------------------- guides

def mixture_image(height: int, width: int, blobs: int, seed: int) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]: `blobs` Gaussians of random colours, centres and sizes, blended by their
    weight at each pixel (a smooth field of colours that tells places apart)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    side = max(height, width)
    total = np.full((height, width), 1e-6, np.float32)
    image = np.zeros((height, width, 3), np.float32)
    for _ in range(blobs):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        sigma = rng.uniform(0.05, 0.2) * side
        g = np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma ** 2)).astype(np.float32)
        image += g[..., None] * rng.uniform(0, 1, 3).astype(np.float32)
        total += g
    return image / total[..., None]


def mixture_guides(flows_back: np.ndarray, height: int, width: int, blobs: int, seed: int) -> np.ndarray:
    """(N, H, W, 3) uint8: the mixture image on frame 0, carried to each frame t along the flow t -> t-1
    (`flows_back[t]`, as `artify.flow.backward_flows` gives; flows_back[0] is not used)."""
    guide = mixture_image(height, width, blobs, seed)
    guides = [guide]
    for flow in flows_back[1:]:
        guide = warp(guide, np.asarray(flow, np.float32))
        guides.append(guide)
    return (np.clip(np.stack(guides), 0, 1) * 255 + 0.5).astype(np.uint8)


def shot_guides(frames: np.ndarray, keys: list[int], stylized: np.ndarray, settings: PropagateSettings, seed: int,
                flow: FlowMethod = DIS) -> np.ndarray:
    """The guide channels of a shot's frames (N, H, W, C) uint8: C = 0 with propagate_guide none, the mixture
    guide's 3 with mixture, and with carried those 3 then `carried_keyframes`' 4 (the stylized keyframes carried
    to each frame along the flow, and where that can be trusted)."""
    n, h, w = frames.shape[:3]
    if settings.propagate_guide == "none":
        return np.zeros((n, h, w, 0), np.uint8)
    links = frame_links(frames, flow, both=settings.propagate_guide == "carried")
    guides = mixture_guides(links["back"], h, w, settings.propagate_guide_blobs, seed)
    if settings.propagate_guide == "carried":
        guides = np.concatenate([guides, carried_keyframes(stylized, keys, links, frames)], axis=-1)
    return guides


def frame_links(frames: np.ndarray, flow: FlowMethod = DIS, both: bool = True) -> dict[str, np.ndarray]:
    """The flows between neighbouring frames, each on its own frame's grid: back[t] (t -> t-1, back[0] zero) and,
    with `both`, ahead[t] (t -> t+1, the last zero)."""
    n, h, w = frames.shape[:3]
    zero = np.zeros((1, h, w, 2), np.float32)
    later, earlier = list(frames[1:]), list(frames[:-1])
    if n == 1:
        return {"back": zero, "ahead": zero}
    if not both:
        return {"back": np.concatenate([zero, flow.pairs(later, earlier)])}
    pairs = flow.pairs(later + earlier, earlier + later)
    return {"back": np.concatenate([zero, pairs[:n - 1]]), "ahead": np.concatenate([pairs[n - 1:], zero])}


def carried_positions(flows) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel of the frames along a chain comes from in the chain's first frame. flows[j] brings
    frame j's pixels to frame j-1 (flows[0] unused). Returns positions (N, H, W, 2) (x, y in the first frame's
    pixels) and (N, H, W) bool: every step stayed inside the picture. Positions, not pictures, are carried,
    so what is sampled at them is resampled once, however long the chain (a picture warped frame after frame
    blurs)."""
    h, w = flows[0].shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    position, inside = np.stack([xs, ys], -1), np.ones((h, w), bool)
    positions, insides = [position], [inside]
    for f in flows[1:]:
        f = np.asarray(f, np.float32)
        x, y = xs + f[..., 0], ys + f[..., 1]
        inside = (warp(inside.astype(np.float32), f) > 0.5) & (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
        position = warp(position, f)
        positions.append(position)
        insides.append(inside)
    return np.stack(positions), np.stack(insides)


# How far (mean of R, G, B over 255, after a 5x5 blur) a frame's pixel may be from the keyframe's at the
# position carried to it and the keyframe's look still be trusted there
TRUST_DIFFERENCE = 20


def carried_trust(frames: np.ndarray, key: np.ndarray, positions: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """(N, H, W) float32 weight of a keyframe's carried look on each frame: 1 where the chain stayed inside
    the picture and the frame still shows what the keyframe showed at the carried position, else 0. Checked
    on the pictures rather than by each step's forward-backward flow check, which gives up ~10 % of the pixels
    at every step on textured motion, so a chain of them trusts ever less of the frame and what it trusts
    flickers from frame to frame."""
    def smooth(picture):
        return cv2.GaussianBlur(np.asarray(picture, np.float32), (5, 5), 0)

    seen = _sample(smooth(key), positions)
    now = np.stack([smooth(f) for f in frames])
    return (inside & (np.abs(now - seen).mean(-1) < TRUST_DIFFERENCE)).astype(np.float32)


def held_trust(trust: np.ndarray, flows) -> np.ndarray:
    """`carried_trust` along a chain (frame 0 the keyframe; flows as `carried_positions` takes them) with a
    pixel whose look was lost once kept lost: the picture test flickers on and off where a fast or blurred
    object passes near its threshold, and each time the output switched between the carried look and the
    network's painting, or between the two keyframes' looks. Measured on 24 frames at 256 px with keyframes at
    both ends: warping error 1 frame apart 4.52e-4 -> 3.46e-4 on moviepy_chaplin, 3.91e-4 -> 3.59e-4 on
    adain_cutBunny, style distance within 5 % (lower on chaplin)."""
    held = [trust[0]]
    for t, f in zip(trust[1:], flows[1:]):
        held.append(t * (warp(held[-1], np.asarray(f, np.float32)) > 0.5))
    return np.stack(held).astype(np.float32)


def carried_keyframes(stylized: np.ndarray, keys: list[int], links: dict, frames: np.ndarray) -> np.ndarray:
    """(N, H, W, 4) uint8: each frame's stylized keyframes carried to it along the flow (RGB), and where they
    can be trusted (the 4th channel, 0 or 255; `carried_trust`). A frame between keyframes a < b blends the
    one carried forward from a and the one carried back from b by their distance in time (EbSynth's blend of
    two sequences), each where it is trusted (`held_trust`), so the look moves smoothly from one keyframe's to the
    next's and meets each keyframe exactly: no jump there. After the last keyframe only it is carried."""
    n = len(links["back"])
    out = np.zeros(links["back"].shape[:3] + (4,), np.uint8)
    for i, a in enumerate(keys):
        b = keys[i + 1] if i + 1 < len(keys) else n  # keyframe a's frames: [a, b)
        flows = links["back"][a:b]
        forward, inside = carried_positions(flows)
        styles = [_sample(stylized[i], forward)]
        weights = [held_trust(carried_trust(frames[a:b], frames[a], forward, inside), flows)]
        if b < n:  # the next keyframe carried back: a chain from b down to a, then put in time order
            chain = np.arange(b, a - 1, -1)
            flows = links["ahead"][chain]
            back, inside = carried_positions(flows)
            trust = held_trust(carried_trust(frames[chain], frames[b], back, inside), flows)
            back, trust = back[::-1][:b - a], trust[::-1][:b - a]
            to_b = ((np.arange(a, b) - a) / (b - a))[:, None, None]  # 0 at a, towards 1 at b
            styles.append(_sample(stylized[i + 1], back))
            weights = [weights[0] * (1 - to_b), trust * to_b]
        trusted = sum(weights) > 0
        mix = blend(styles, weights)
        out[a:b, ..., :3] = np.clip(mix * trusted[..., None] + 0.5, 0, 255)
        out[a:b, ..., 3] = trusted * 255
    return out


def blend(looks: list[np.ndarray], weights: list[np.ndarray], sigma: float = 3.0) -> np.ndarray:
    """Looks (N, H, W, 3) float mixed by their weights (N, H, W) with the contrast of their detail kept: the
    local means (a Gaussian of `sigma` px) mix linearly; the detail (look less its local mean) mixes linearly
    too and is then scaled back to the local energy the looks' details have, mixed by weight. A plain average
    of two unrelated brush textures halves their contrast midway between keyframes, and the style with it
    (what Heitz and Neyret 2018's histogram-preserving blending, which EbSynth uses, undoes with a fixed
    factor); measuring the energy instead also leaves alike details (the same strokes on both keyframes) as
    they are, where that factor would sharpen them. One look of weight 1 comes out as it is."""
    total = np.maximum(sum(weights), 1e-6)
    shares = [(w / total)[..., None] for w in weights]

    def local(x):
        return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in x])

    means = [local(look) for look in looks]
    details = [look - m for look, m in zip(looks, means)]
    mixed = sum(d * s for d, s in zip(details, shares))
    wanted = sum(local(d ** 2) * s for d, s in zip(details, shares))
    gain = np.sqrt(wanted / np.maximum(local(mixed ** 2), 1e-6))
    return sum(m * s for m, s in zip(means, shares)) + mixed * np.clip(gain, 1, 2)


def _sample(picture: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) float32: `picture` sampled at each frame's positions (x, y). Lanczos: on 48 frames of
    adain_cutBunny at 256 px it kept the most style (distance 3.99e9 against bicubic's 4.29e9) with the same
    warping errors; nearest kept about as much but moved in whole pixels (warping error at 1 frame 4x)."""
    picture = np.asarray(picture, np.float32)
    return np.stack([cv2.remap(picture, p[..., 0], p[..., 1], cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE)
                     for p in positions])


def hide_carried(inputs: torch.Tensor, generator: torch.Generator, share: float = 0.5) -> torch.Tensor:
    """Training patches with the carried guide (the last 4 channels) hidden in a random rectangle of about
    `share` of them, as where the flow cannot be trusted: a keyframe's carried guide is the stylized keyframe
    itself everywhere, so without this the network would only learn to copy it and have nothing to paint
    where a later frame shows what no keyframe saw."""
    n, _, h, w = inputs.shape
    inputs = inputs.clone()
    hide = torch.rand(n, generator=generator) < share
    sides = torch.rand(n, 2, generator=generator) * 0.7 + 0.3
    corners = torch.rand(n, 2, generator=generator)
    for i in torch.nonzero(hide).flatten().tolist():
        dh, dw = max(1, int(sides[i, 0] * h)), max(1, int(sides[i, 1] * w))
        y, x = int(corners[i, 0] * (h - dh + 1)), int(corners[i, 1] * (w - dw + 1))
        inputs[i, -4:, y:y + dh, x:x + dw] = 0
    return inputs


# --------------------------------------------------------------------------------------------- network

class PatchNet(nn.Module):
    """A small U-Net (frame + guides -> stylized frame): two stride-2 levels, two residual blocks at the
    bottom, skip connections; about 0.27 M parameters at width 16. Fully convolutional, so it trains on
    patches and runs on whole frames (any size: padded to a multiple of 4)."""

    def __init__(self, inputs: int = 6, width: int = 16):
        super().__init__()
        w = width

        def conv(a, b, stride=1):
            return nn.Sequential(nn.Conv2d(a, b, 3, stride, 1, padding_mode=PADDING), nn.LeakyReLU(0.2))

        self.enc0 = nn.Sequential(conv(inputs, w), conv(w, w))
        self.enc1 = nn.Sequential(conv(w, 2 * w, 2), conv(2 * w, 2 * w))
        self.enc2 = nn.Sequential(conv(2 * w, 4 * w, 2), conv(4 * w, 4 * w))
        self.res = nn.ModuleList(nn.Sequential(conv(4 * w, 4 * w), nn.Conv2d(4 * w, 4 * w, 3, 1, 1,
                                                                               padding_mode=PADDING))
                                 for _ in range(2))
        self.dec1 = nn.Sequential(conv(6 * w, 2 * w), conv(2 * w, 2 * w))
        self.dec0 = nn.Sequential(conv(3 * w, w), conv(w, w))
        self.out = nn.Conv2d(w, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = F.pad(x, (0, -w % 4, 0, -h % 4), mode="replicate")
        e0 = self.enc0(x)
        e1 = self.enc1(e0)
        e2 = self.enc2(e1)
        for block in self.res:
            e2 = e2 + block(e2)
        d1 = self.dec1(torch.cat([F.interpolate(e2, scale_factor=2.0, mode="nearest"), e1], 1))
        d0 = self.dec0(torch.cat([F.interpolate(d1, scale_factor=2.0, mode="nearest"), e0], 1))
        return torch.sigmoid(self.out(d0))[..., :h, :w]


def network_input(frames: np.ndarray, guides: np.ndarray, device) -> torch.Tensor:
    """(N, 3 + C, H, W) float in [0, 1]: the frames and their guide channels."""
    return torch.cat([to_tensor(frames, device), to_tensor(guides, device)], 1)


def apply_network(net: PatchNet, frames: np.ndarray, guides: np.ndarray, device, batch: int = 8,
                  precision: str = "auto", carried: bool = False, flows: dict | None = None, blend: float = 0.0,
                  previous: list[np.ndarray] | None = None) -> Iterator[np.ndarray]:
    """The network's output for each frame, `batch` frames a forward pass, as uint8 (H, W, 3). carried: the
    guides end with `carried_keyframes`' 4 channels, and the output is the carried look where it is trusted
    and the network's where it is not (`composite`). blend > 0 (the `flow_blend` steadier, with `flows`, the
    frames' `backward_flows`): where the network painted, the output is blended with the previous output
    warped by the flow where that is reliable, so what it paints moves with the scene rather than being
    painted anew each frame (measured: the painted 2-14 % of a frame made 45 % of the warping error).
    previous: the outputs of the first frames (a chained chunk's overlap), which blending continues from."""
    net.eval()
    last = None
    for i in range(0, len(frames), batch):
        with torch.no_grad(), autocast(device, precision):
            inputs = network_input(frames[i:i + batch], guides[i:i + batch], device)
            out = net(inputs).float()
        painted = torch.ones_like(out[:, :1])
        if carried:
            out, painted = composite(out, inputs.float())
        for j in range(len(out)):
            t, o = i + j, out[j:j + 1]
            if previous is not None and t < len(previous):
                o = to_tensor(previous[t], device)
            elif blend > 0 and last is not None:
                reliable = torch.as_tensor(flows["mask_1"][t], dtype=torch.float32, device=device)[None, None]
                flow = flow_to_torch(np.asarray(flows["flow_1"][t], np.float32), device)
                o = o + blend * reliable * painted[j:j + 1] * (warp_torch(last, flow) - o)
            last = o
            yield to_uint8(o)[0]


def composite(made: torch.Tensor, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The carried look (the inputs' last 4 channels) where it is trusted, the network's output elsewhere,
    the seam feathered over the two trusted pixels next to it; and the share of each pixel the network
    painted. The network reproduces a keyframe only so far (its few steps blur the finest brush strokes, which
    is where a painting's style lives); the carried look is the keyframe's own strokes, moved."""
    look, trusted = inputs[:, -4:-1], inputs[:, -1:]
    weight = F.avg_pool2d(trusted, 5, 1, 2, count_include_pad=False) * trusted
    return weight * look + (1 - weight) * made, 1 - weight


# -------------------------------------------------------------------------------------------- training

def shot_record(settings: Settings, seed: int, contents, guides, targets) -> dict:
    """What a shot's network is made from: its training settings, the seed, and the bytes of its keyframes,
    their guides and their stylizations. A saved state resumes only a training of the same (the step count
    may grow; the checkpoint interval does not change the result)."""

    kept = {k: v for k, v in settings.stage_values("train_propagate").items()
            if k.startswith("propagate_") and k not in ("propagate_steps", "propagate_checkpoint_every")}
    return {**kept, "seed": seed, "vgg": f"{settings.vgg_source} {settings.vgg_weights}",
            "keyframes (content, guides, stylized)": _digest([contents, guides, targets])}


def sample_patches(contents, guides, targets, size: int, batch: int, generator: torch.Generator, device):
    """`batch` random (input, target) patches of side `size` (at most the frame's) from random keyframes."""
    k, h, w = contents.shape[:3]
    size = min(size, h, w)
    picks = torch.randint(k, (batch,), generator=generator).tolist()
    ys = torch.randint(h - size + 1, (batch,), generator=generator).tolist()
    xs = torch.randint(w - size + 1, (batch,), generator=generator).tolist()
    cut = [np.s_[i, y:y + size, x:x + size] for i, y, x in zip(picks, ys, xs)]
    inputs = network_input(np.stack([contents[c] for c in cut]), np.stack([guides[c] for c in cut]), device)
    return inputs, to_tensor(np.stack([targets[c] for c in cut]), device)


def perceptual_loss(vgg, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of VGG19 features, each layer relative to the target's mean activation (so
    layers weigh alike whatever their scale)."""
    ours, theirs = vgg(out, PERCEPTUAL_LAYERS), vgg(target, PERCEPTUAL_LAYERS)
    return sum((ours[k] - theirs[k]).abs().mean() / (theirs[k].abs().mean() + 1e-6) for k in ours) / len(ours)


def train_network(contents: np.ndarray, guides: np.ndarray, targets: np.ndarray, out, settings: Settings,
                  device="cpu", seed: int = 0, stop_after: int | None = None, extra: dict | None = None) -> dict:
    """Train (or continue training) one shot's network on its keyframes: `contents` (K, H, W, 3) uint8 with
    their `guides` (K, H, W, C) -> `targets` (K, H, W, 3), the stylized keyframes. Writes `out` (the network,
    its width, guide channels, plus `extra`) when done; a state beside it (`{out}.state.pt`) every
    propagate_checkpoint_every steps, from which a rerun continues unless it was made from other settings or
    keyframes. stop_after: return after this many steps of this call (as a kill would).
    Returns {"step", "history": [(step, loss, l1, perceptual)], "finished"}."""
    s, out, device = settings, Path(out), torch.device(device)
    torch.manual_seed(seed)
    net = PatchNet(3 + guides.shape[3], s.propagate_width).to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=s.propagate_lr)
    vgg = vgg19(device, s.vgg_source, s.vgg_weights or None) if s.propagate_perceptual_weight else None
    record = shot_record(s, seed, contents, guides, targets)
    state_file, step, history = state_path(out), 0, []
    state = torch.load(state_file, map_location=device, weights_only=True) if state_file.is_file() else None
    if state is not None and int(state["step"]) > s.propagate_steps:
        print(f"{state_file}: trained {int(state['step'])} steps, more than propagate_steps: training starts over",
              flush=True)
        state = None
    if state is not None and (changed := state_changes(state, record)):
        print(f"{state_file}: made with another {', '.join(changed)}: training starts over", flush=True)
        state = None
    if state is not None:
        net.load_state_dict(state["network"])
        optimiser.load_state_dict(state["optimiser"])
        step, history = int(state["step"]), [tuple(h) for h in state["history"].tolist()]
        print(f"resuming from {state_file} at step {step}", flush=True)

    def save_state():
    
        _save_atomic({"network": net.state_dict(), "optimiser": optimiser.state_dict(), "step": step,
                      "history": torch.tensor(history, dtype=torch.float64).reshape(-1, 4),
                      "made_from": json.dumps(record)}, state_file)

    net.train()
    done_here = 0
    while step < s.propagate_steps:
        if stop_after is not None and done_here >= stop_after:
            return {"step": step, "history": history, "finished": False}
        generator = torch.Generator().manual_seed(seed * 1_000_003 + step)  # resumed steps draw the same patches
        inputs, wanted = sample_patches(contents, guides, targets, s.propagate_patch, s.propagate_batch, generator,
                                        device)
        if s.propagate_guide == "carried":
            inputs = hide_carried(inputs, generator)
        with autocast(device, s.precision):
            made = net(inputs).float()
            l1 = (made - wanted).abs().mean()
            perceptual = perceptual_loss(vgg, made, wanted) if vgg is not None else torch.zeros(())
            loss = l1 + s.propagate_perceptual_weight * perceptual
        if not torch.isfinite(loss):
            raise NonFiniteError(f"{out}: non-finite loss at step {step + 1}; the last checkpoint ({state_file}) is "
                                 f"kept; lower propagate_lr to continue")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        step, done_here = step + 1, done_here + 1
        history.append((step, float(loss.detach()), float(l1.detach()), float(perceptual.detach())))
        if step % s.propagate_checkpoint_every == 0 or step == s.propagate_steps:
            save_state()
    _save_atomic({"network": net.state_dict(), "width": s.propagate_width, "guide_channels": guides.shape[3],
                  **(extra or {})}, out)
    return {"step": step, "history": history, "finished": True}


def load_shot_network(path, device) -> tuple[PatchNet, dict]:
    """A shot's trained network (on `device`) and everything saved with it."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    net = PatchNet(3 + int(saved["guide_channels"]), int(saved["width"]))
    net.load_state_dict(saved["network"])
    return net.to(device), saved


# ----------------------------------------------------------------------------------------- shot by shot

SHOTS_COLUMNS = ["start", "stop", "keyframes", "network", "sha256"]  # sha256: the network file's (a retrained
# network changes the table, so the stylization's resume key sees it)
# The keyframes table (rule propagate_keyframes' output, rule train_propagate's input): each shot's keyframes (the
# job's frame numbers), their files beside the table and each file's sha256 (a keyframe stylized again changes
# the table, so the training's rerun sees it)
KEYFRAMES_COLUMNS = ["start", "stop", "keyframes", "files", "sha256"]


def network_name(start: int) -> str:
    return f"shot_{start:06d}.pt"


def shot_networks(frames_of: Callable[[int, int], np.ndarray], shot_ranges, weights: np.ndarray,
                  styles: list[np.ndarray], folder, settings: Settings, device, flow: FlowMethod = DIS, decoder=None,
                  stop_after=None) -> list[dict]:
    """Both stages of a job's networks in `folder`, as the rules run them one after the other: each shot's
    keyframes (`shot_keyframes`, rule propagate_keyframes), then its network (`train_shots`, rule
    train_propagate). Returns the shots table's rows (`SHOTS_COLUMNS`)."""
    keyframes = shot_keyframes(frames_of, shot_ranges, weights, styles, folder, settings, device, flow, decoder)
    return train_shots(frames_of, keyframes, folder, folder, settings, device, flow, stop_after)


def shot_keyframes(frames_of: Callable[[int, int], np.ndarray], shot_ranges, weights: np.ndarray,
                   styles: list[np.ndarray], folder, settings: Settings, device, flow: FlowMethod = DIS,
                   decoder=None) -> list[dict]:
    """Each shot's keyframes (`keyframe_indices`) stylized into `folder` (`_keyframes_cached`: a keyframe made
    from the same is kept). `frames_of(a, b)` gives the job's frames [a, b): each shot is read when its turn
    comes, so a film's frames are never all held at once. Returns the keyframes table's rows
    (`KEYFRAMES_COLUMNS`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for a, b in shot_ranges:
        shot = frames_of(a, b)
        keys = keyframe_indices(shot, settings.propagate_min_reliable, settings.propagate_every, flow,
                                weights[a:b], settings.propagate_mix_tolerance)
        files = _keyframes_cached(folder, shot[keys], [a + k for k in keys], weights, styles, settings, device,
                                  decoder)
        rows.append({"start": a, "stop": b, "keyframes": ",".join(str(a + k) for k in keys),
                     "files": ",".join(f.name for f in files), "sha256": ",".join(file_digest(f) for f in files)})
    return rows


def train_shots(frames_of: Callable[[int, int], np.ndarray], keyframe_rows: list[dict], keyframe_folder, folder,
                settings: Settings, device, flow: FlowMethod = DIS, stop_after=None) -> list[dict]:
    """Train one network per shot of the keyframes table (`keyframe_rows`, its files in `keyframe_folder`) into
    `folder`; a shot whose network exists and was made from the same settings and keyframes is kept as it is (a
    changed setting or keyframe retrains exactly the shots it touches). `frames_of` as `shot_keyframes` takes it.
    Returns the shots table's rows (`SHOTS_COLUMNS`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for row in keyframe_rows:
        a, b = int(row["start"]), int(row["stop"])
        shot = frames_of(a, b)
        keys = [int(i) - a for i in row["keyframes"].split(",")]
        targets = load_keyframes(keyframe_folder, row)
        guides = shot_guides(shot, keys, targets, settings, settings.seed, flow)
        out = folder / network_name(a)
        record = shot_record(settings, settings.seed, shot[keys], guides[keys], targets)
        saved = _saved_network(out)
        if saved is None or json.loads(saved.get("made_from", "{}")) != record:
            print(f"shot [{a}, {b}): keyframes {[a + k for k in keys]}; training", flush=True)
            result = train_network(shot[keys], guides[keys], targets, out, settings, device, settings.seed,
                                   stop_after=stop_after, extra={"guides": torch.from_numpy(guides), "guide":
                                                                 settings.propagate_guide, "made_from": json.dumps(record)})
            if not result["finished"]:
                return rows
        elif not np.array_equal(saved["guides"].numpy(), guides):
            # the same network, other guides between the keyframes (another flow): kept with the new ones
            print(f"shot [{a}, {b}): guides changed, network kept", flush=True)
            _save_atomic({**saved, "guides": torch.from_numpy(guides)}, out)
        rows.append({"start": a, "stop": b, "keyframes": row["keyframes"], "network": out.name,
                     "sha256": file_digest(out)})
    return rows


def _saved_network(path: Path) -> dict | None:
    return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None


def _keyframes_cached(folder: Path, keyframes: np.ndarray, indices, weights, styles, settings: Settings, device,
                      decoder) -> list[Path]:
    """`stylize_keyframes` of `keyframes` (the job's frames `indices`), each kept in `folder` as
    keyframe_NNNNNN.npz with a key of what it was made from (the keyframe method's settings, the frame, its
    style mix and the style images): a rerun stylizes only the keyframes whose key changed. Returns the files."""
    made_by = np.frombuffer(json.dumps(one_frame_settings(settings), sort_keys=True).encode(), np.uint8)
    files = []
    for frame, i in zip(keyframes, indices):
        path, key = folder / f"keyframe_{i:06d}.npz", _digest([made_by, frame, np.asarray(weights[i], np.float64),
                                                                *styles])
        files.append(path)
        if path.is_file():
            with np.load(path) as saved:
                if str(saved["key"]) == key:
                    continue
        stylized = stylize_keyframes(frame[None], weights[i:i + 1], styles, settings, device, decoder)[0]
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, key=np.array(key), stylized=stylized)
    return files


def load_keyframes(folder, row: dict) -> np.ndarray:
    """A shot's stylized keyframes (K, H, W, 3) from its row of the keyframes table, their files in `folder`,
    each checked against the sha256 the table gives it (a file changed since would train on other keyframes
    than the table says)."""
    stylized = []
    for name, digest in zip(row["files"].split(","), row["sha256"].split(",")):
        path = Path(folder) / name
        if file_digest(path) != digest:
            raise ValueError(f"{path}: not the keyframe the keyframes table lists (its sha256 differs); rerun "
                             f"propagate_keyframes")
        with np.load(path) as saved:
            stylized.append(saved["stylized"])
    return np.stack(stylized)


def apply_shots(folder, table: list[dict], frames: np.ndarray, start: int, device, batch: int = 8,
                precision: str = "auto", networks: dict | None = None, flows: dict | None = None,
                blend: float = 0.0, previous: list[np.ndarray] | None = None) -> Iterator[np.ndarray]:
    """Stylize `frames` (the job's frames [start, start + N)) with the network of each shot they fall in;
    `networks` caches loaded networks by file (a span's chunks load each once). flows, blend, previous: the
    flow blend of `apply_network`, for frames within one shot (as the chunk driver gives them)."""
    networks = {} if networks is None else networks
    stop = start + len(frames)
    done = start
    for row in table:
        a, b = max(row["start"], start), min(row["stop"], stop)
        if a >= b:
            continue
        if a != done:
            raise ValueError(f"{folder}: no shot network for frames [{done}, {a})")
        name = row["network"]
        if name not in networks:
            networks[name] = load_shot_network(Path(folder) / name, device)
        net, saved = networks[name]
        guides = saved["guides"].numpy()[a - row["start"]:b - row["start"]]
        if guides.shape[1:3] != frames.shape[1:3]:
            raise ValueError(f"{Path(folder) / name}: made for {guides.shape[2]}x{guides.shape[1]} frames, these are "
                             f"{frames.shape[2]}x{frames.shape[1]}; rerun train_propagate")
        one_shot = (a, b) == (start, stop)  # the flow blend never reaches across a cut
        yield from apply_network(net, frames[a - start:b - start], guides, device, batch, precision,
                                 saved.get("guide") == "carried", flows, blend if one_shot else 0.0,
                                 previous if one_shot else None)
        done = b
    if done != stop:
        raise ValueError(f"{folder}: no shot network for frames [{done}, {stop})")


def read_shots(path) -> list[dict]:
    """The shots table (rule train_propagate's output, `write_shots`)."""
    return _read_table(path, SHOTS_COLUMNS, "shots")


def write_shots(rows: list[dict], path) -> None:
    _write_table(rows, SHOTS_COLUMNS, path)


def read_shot_keyframes(path) -> list[dict]:
    """The keyframes table (rule propagate_keyframes' output, `write_shot_keyframes`)."""
    return _read_table(path, KEYFRAMES_COLUMNS, "keyframes")


def write_shot_keyframes(rows: list[dict], path) -> None:
    _write_table(rows, KEYFRAMES_COLUMNS, path)


def _read_table(path, columns: list[str], kind: str) -> list[dict]:
    # the lists and digests stay text: a shot of one keyframe would otherwise read as a number
    table = pd.read_csv(path, sep="\t", dtype={"keyframes": str, "files": str, "sha256": str})
    if list(table.columns) != columns:
        raise ValueError(f"{path}: a {kind} table needs columns {columns}; found {list(table.columns)}")
    return table.to_dict("records")


def _write_table(rows: list[dict], columns: list[str], path) -> None:
    with atomic_path(path) as tmp:
        pd.DataFrame(rows, columns=columns).to_csv(tmp, sep="\t", index=False)


def stylizer(settings: Settings, device, inputs: dict):
    """The method interface (issue 24): the job's shots table (inputs["shot_networks"], `train_shots`' output,
    the networks beside it) read once; returns shot -> stylized frames (batched by batch_frames)."""
    table_path = Path(inputs["shot_networks"])
    table, networks = read_shots(table_path), {}

    blend = settings.flow_blend if settings.temporal else 0.0

    def stylize(shot) -> Iterator[np.ndarray]:
        return apply_shots(table_path.parent, table, shot.frames, shot.start, device, settings.batch_frames,
                           settings.precision, networks, shot.flows, blend, shot.previous)

    return stylize
