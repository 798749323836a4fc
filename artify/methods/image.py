"""Stylize one picture: `artify image content.jpg style.jpg -o out.png` (no Snakemake needed)."""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import torch

from artify.settings import ConfigError, Settings
from artify.methods.registry import METHODS, NEEDS, Shot, method_for
from artify.methods.stylize import pick_device
from artify.media.video import MediaError, load_image


def stylize_image(content, style, out, settings: Settings, size: int = 512) -> np.ndarray:
    """settings.method: any method that runs on one picture (`Method.images`): gatys, or arbitrary (Magenta's
    pretrained network by default: no training)."""
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
    method = method_for(settings.method)
    if not method.images:
        videos_only = ", ".join(NEEDS[n] for n in sorted(method.needs(vars(settings))))
        raise ConfigError(f"method {method.name} is for videos (it needs {videos_only}); artify image runs "
                          + " or ".join(m.name for m in METHODS.values() if m.images))
    stylize_shot = method.stylizer(settings, device)
    (result,) = stylize_shot(Shot(image[None], np.ones((1, 1)), [style_image]))
    if not cv2.imwrite(str(out), cv2.cvtColor(result, cv2.COLOR_RGB2BGR)):
        raise MediaError(f"{out}: could not write the image (unwritable folder?)")
    return result
