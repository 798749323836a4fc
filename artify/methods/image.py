"""Stylize one picture: `artify image content.jpg style.jpg -o out.png` (no Snakemake needed)."""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import torch

from artify.features import vgg19
from artify.settings import ConfigError, Settings
from artify.devices import pick_device
from artify.media.video import MediaError, load_image


def stylize_image(content, style, out, settings: Settings, size: int = 512) -> np.ndarray:
    """settings.method: gatys, or arbitrary (Magenta's pretrained network by default: no training)."""
    if not cv2.haveImageWriter(str(out)):  # before the work, not after
        raise MediaError(f"{out}: not a picture file name OpenCV can write (.png, .jpg, ...)")
    torch.manual_seed(settings.seed)
    device = pick_device(settings.device)
    image = load_image(content, size)
    h, w = image.shape[:2]
    image = cv2.resize(image, (w - w % 2, h - h % 2), interpolation=cv2.INTER_AREA)
    style_image = load_image(style, settings.style_size)
    # one picture has no neighbours in time: the temporal terms do not apply
    settings = replace(settings, temporal=False)
    if settings.method == "arbitrary":
        from artify.methods.arbitrary import network_for, stylize_frames

        model = network_for(settings, device)
    elif settings.method == "gatys":
        from artify.methods.gatys import stylize_frames

        model = vgg19(device, settings.vgg_source, settings.vgg_weights or None)  # as a video's frames
    else:
        raise ConfigError(f"method {settings.method} is for videos (it needs the masks of a video's chunks); "
                          "artify image runs gatys or arbitrary")
    (result,) = stylize_frames(model, image[None], np.ones((1, 1)), [style_image], settings, device)
    if not cv2.imwrite(str(out), cv2.cvtColor(result, cv2.COLOR_RGB2BGR)):
        raise MediaError(f"{out}: could not write the image (unwritable folder?)")
    return result
