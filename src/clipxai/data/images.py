"""Image file helpers shared by the data-set formats: deterministic encoders, atomic writes, checked reads.

Every writer in ``clipxai.data`` encodes through :func:`encode_jpeg` / :func:`encode_png` (fixed settings, so the
same pixels give the same bytes) and writes through :func:`write_bytes` (atomic, via ``clipxai.io``). Readers open
images through :func:`read_rgb` / :func:`image_size`, which turn an unreadable file into an ``InputError``.
"""

from __future__ import annotations

import contextlib
import io as _io
import os
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from clipxai.errors import InputError

# Fixed JPEG settings: quality 95 and no chroma subsampling keep the saturated object colours of small synthetic
# images intact; no optimisation pass, no progressive mode, no metadata, so bytes depend only on the pixels.
JPEG_QUALITY = 95
JPEG_SUBSAMPLING = 0  # 4:4:4


def encode_jpeg(rgb: np.ndarray) -> bytes:
    """JPEG bytes of an ``uint8 [H, W, 3]`` image with the fixed settings above."""
    buffer = _io.BytesIO()
    Image.fromarray(_as_uint8_rgb(rgb), "RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY,
                                                    subsampling=JPEG_SUBSAMPLING, optimize=False)
    return buffer.getvalue()


def encode_png(image: np.ndarray | Image.Image) -> bytes:
    """PNG bytes (fixed compression level) of an array (``[H,W]`` L / ``[H,W,3]`` RGB) or a PIL image (e.g. mode P)."""
    if not isinstance(image, Image.Image):
        array = np.ascontiguousarray(image)
        if array.dtype != np.uint8:
            raise ValueError(f"encode_png needs uint8 pixels, got {array.dtype}")
        image = Image.fromarray(array)
    buffer = _io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6, optimize=False)
    return buffer.getvalue()


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temp file beside it, renamed onto it on success.

    The same guarantee as ``clipxai.io.atomic_path``, with a temp name fixed by the target and the process instead
    of ``mkstemp``'s random one: a third of the system calls, which matters for thousands of small image files.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        try:
            fh = open(tmp, "wb")
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(tmp, "wb")
        with fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def _reading(path: Path, what: str) -> Iterator[None]:
    """Turn every way an image file can fail to open into one InputError naming it."""
    try:
        yield
    except FileNotFoundError:
        raise InputError(path, what, "an existing image file") from None
    except IsADirectoryError:
        raise InputError(path, what, "an image file, not a directory") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        # PIL refuses (or, with warnings turned into errors, warns about) images whose pixel count could exhaust
        # memory: a hostile or broken file, never one of a data set's photos
        raise InputError(path, what, f"an image of at most {Image.MAX_IMAGE_PIXELS} pixels, not a possible "
                         f"decompression bomb ({err})") from None
    except UnidentifiedImageError:
        raise InputError(path, what, "a readable image file (JPEG, PNG, ...): its content is no image format "
                         "PIL knows") from None
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data (PIL raises all three)
        raise InputError(path, what, f"a readable image file: its data is corrupt or truncated ({err})") from None


def read_rgb(path: str | Path, what: str = "image") -> np.ndarray:
    """The pixels of an image file as ``uint8 [H, W, 3]`` (any mode converted to RGB)."""
    path = Path(path)
    with _reading(path, what), Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def read_image(path: str | Path, what: str = "image") -> Image.Image:
    """The image file as a loaded PIL image in its own mode (e.g. ``P`` for palette PNGs)."""
    path = Path(path)
    with _reading(path, what), Image.open(path) as im:
        im.load()
        return im.copy()


def image_size(path: str | Path, what: str = "image") -> tuple[int, int]:
    """``(width, height)`` of an image file, read from its header only."""
    path = Path(path)
    with _reading(path, what), Image.open(path) as im:
        return im.size


def _as_uint8_rgb(rgb: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(rgb)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected uint8 [H, W, 3] pixels, got {array.dtype} {array.shape}")
    return array
