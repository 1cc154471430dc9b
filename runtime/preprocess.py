"""Image preprocessing shared by training (host) and the exported artifact's runtime (device).

One function turns a decoded image into the model's input, so the pixels a model was trained on
and the pixels it sees on the device go through the same code: a resize done one way in training
and another way on the device costs accuracy silently. Device side: numpy and Pillow only, never
torch, and Pillow is imported inside the functions so ``import compress.runtime`` stays cheap for
artifacts that take arrays rather than images.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

MODES = {1: "L", 3: "RGB"}
LAYOUTS = ("nchw", "nhwc")
WIDE_GRAY_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})  # taken as 0..65535
_FIELDS = ("size", "resize", "channels", "mean", "std", "layout")


@dataclass(frozen=True)
class ImagePreprocessing:
    """What turns an image into model input; stored in the artifact's signature file.

    ``size`` is (h, w) after resizing (None keeps the image's own size). ``resize`` scales the
    shorter side to that many pixels, keeping the aspect ratio, before a centre crop to ``size``;
    None resizes straight to ``size``, stretching if the aspect ratio differs. ``mean`` and ``std``
    are per channel and apply after pixels are scaled to [0, 1]. ``layout`` is the batch layout
    the model takes: "nchw" gives (c, h, w) per image, "nhwc" gives (h, w, c).
    """

    size: tuple[int, int] | None
    resize: int | None
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    layout: str = "nchw"

    def __post_init__(self) -> None:
        # Fail at construction (recipe load, artifact load), not on the first image.
        if self.channels not in MODES:
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        for name in ("mean", "std"):
            if len(getattr(self, name)) != self.channels:
                raise ValueError(
                    f"{name} needs one value per channel ({self.channels}), "
                    f"got {list(getattr(self, name))}"
                )
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std values must be positive, got {list(self.std)}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 1):
            raise ValueError(f"size must be (height, width) of positive ints, got {self.size}")
        if self.resize is not None and self.resize < 1:
            raise ValueError(f"resize must be a positive int, got {self.resize}")
        if self.resize is not None and self.size is not None and self.resize < min(self.size):
            raise ValueError(
                f"resize {self.resize} is smaller than the crop size {tuple(self.size)}: "
                "the centre crop would not fit along the shorter side"
            )

    @property
    def mode(self) -> str:
        """The Pillow mode images are converted to: 'L' or 'RGB'."""
        return MODES[self.channels]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (lists, not tuples) for the artifact's signature file."""
        d = asdict(self)
        for key in ("size", "mean", "std"):
            if d[key] is not None:
                d[key] = list(d[key])
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ImagePreprocessing:
        """Rebuild from ``to_json``'s dict; unknown keys are refused.

        A key this runtime does not know is a preprocessing step it would silently skip, so an
        artifact from a newer version fails loudly here instead of getting subtly wrong inputs.
        """
        unknown = sorted(set(d) - set(_FIELDS))
        if unknown:
            raise ValueError(f"image preprocessing: unknown keys {unknown}")
        missing = [k for k in _FIELDS if k not in d and k != "layout"]
        if missing:
            raise ValueError(f"image preprocessing: missing keys {missing}")
        size = d["size"]
        return cls(
            size=None if size is None else (int(size[0]), int(size[1])),
            resize=None if d["resize"] is None else int(d["resize"]),
            channels=int(d["channels"]),
            mean=tuple(float(m) for m in d["mean"]),
            std=tuple(float(s) for s in d["std"]),
            layout=str(d.get("layout", "nchw")),
        )


def preprocess_image(image: Image.Image, p: ImagePreprocessing) -> np.ndarray:
    """Colour mode, resize / centre crop, [0, 1] float32, then (x - mean) / std per channel.

    Returns (c, h, w) for layout "nchw" and (h, w, c) for "nhwc"; stack images for a batch.
    Resizing is Pillow's bilinear filter, which antialiases when shrinking; that differs from
    torch's bilinear interpolation, which is exactly why training calls this function too.
    """
    from PIL import Image

    if image.mode in WIDE_GRAY_MODES:
        image = _gray_to_8bit(image)
    if image.mode != p.mode:
        image = image.convert(p.mode)
    if p.resize is not None:
        w, h = image.size
        scale = p.resize / min(w, h)
        new = (max(1, round(w * scale)), max(1, round(h * scale)))
        if new != image.size:
            image = image.resize(new, Image.Resampling.BILINEAR)
        if p.size is not None:
            image = _centre_crop(image, p.size)
    elif p.size is not None and image.size != (p.size[1], p.size[0]):
        image = image.resize((p.size[1], p.size[0]), Image.Resampling.BILINEAR)
    x = np.asarray(image, dtype=np.float32) / np.float32(255.0)
    x = x.reshape(x.shape[0], x.shape[1], p.channels)  # 'L' decodes to (h, w)
    x = (x - np.asarray(p.mean, np.float32)) / np.asarray(p.std, np.float32)
    if p.layout == "nchw":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x, dtype=np.float32)


def _gray_to_8bit(image: Image.Image) -> Image.Image:
    """Scale 16-bit grayscale (16-bit PNGs decode to 'I;16') to 'L' by its full range.

    Pillow's own ``convert`` clips these at 255, which turns almost every pixel white.
    """
    from PIL import Image

    wide = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
    return Image.fromarray(((wide + 128) // 257).astype(np.uint8))  # 2-D uint8 → "L"


def _centre_crop(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Crop (h, w) from the middle; an odd leftover pixel goes to the right / bottom."""
    w, h = image.size
    top, left = (h - size[0]) // 2, (w - size[1]) // 2
    return image.crop((left, top, left + size[1], top + size[0]))


def load_image(path: str | Path) -> Image.Image:
    """Decode an image file fully, turned upright by its EXIF orientation tag.

    ``.load()`` forces the decode here, so a truncated or corrupt file fails now with its name
    rather than later inside a batch. Phone photos are often stored sideways with an orientation
    tag; applying it here means training and the device see the photo the way the user does.
    Raises ValueError naming the file when it is missing, not an image, or broken.
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            image.load()  # the decoded pixels outlive the file, which the with-block closes
            ImageOps.exif_transpose(image, in_place=True)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except Image.DecompressionBombError as e:
        raise ValueError(f"{path}: image too large to decode safely ({e})") from None
    except Image.UnidentifiedImageError:
        raise ValueError(f"{path}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        # Truncated or corrupt data surfaces as any of these, depending on the format's decoder.
        raise ValueError(f"{path}: cannot read as an image ({e})") from None
    return image
