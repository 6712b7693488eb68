"""ImageNet-segmentation (Guillaumin et al., IJCV 2014): ``gtsegs_ijcv.mat``, read and written.

The file is a MATLAB v7.3 MAT-file, i.e. HDF5 behind a 512-byte MATLAB header. It holds a struct ``value`` whose
fields are cell arrays, stored by MATLAB as datasets of HDF5 object references into the ``#refs#`` group:

* ``/value/img``: ``[N, 1]`` references; reference ``i`` points to a ``uint8`` array of shape ``[3, W, H]``
  (MATLAB is column-major, so its ``H x W x 3`` image reads back transposed); ``transpose(2, 1, 0)`` gives
  ``[H, W, 3]``.
* ``/value/gt``: ``[N, 1]`` references; each points to a ``[1, 1]`` cell (again a dataset of references) whose one
  reference points to the ``uint8`` mask of shape ``[W, H]``; ``transpose(1, 0)`` gives ``[H, W]`` with 1 on the
  object and 0 elsewhere.

These are the reads the public evaluation loaders do (``f[f["/value/img"][i, 0]]`` and
``f[f[f["/value/gt"][i, 0]][0, 0]]``); :func:`write` produces exactly that structure, so a synthetic file reads
the same way as the real one (4,276 images).
"""

from __future__ import annotations

import io as _io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import h5py
import numpy as np

from clipxai.data.images import write_bytes
from clipxai.errors import InputError

FILE_NAME = "gtsegs_ijcv.mat"


def _matlab_header() -> bytes:
    # A v7.3 MAT-file starts with a 128-byte MATLAB header (116 bytes of text, 8 of subsystem offset, version
    # 0x0200 and the endian mark "IM") inside a 512-byte HDF5 user block. The text is fixed so output bytes are.
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Jan  1 00:00:00 1970 HDF5 schema 1.00 ."
    header = text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    return header.ljust(512, b"\x00")


@dataclass
class ImageNetSeg:
    """Lazy access to the (image ``uint8 [H,W,3]``, mask ``uint8 [H,W]``) pairs of a ``gtsegs_ijcv.mat``."""

    path: Path
    _file: h5py.File | None = field(default=None, repr=False)
    _length: int = 0

    def __post_init__(self):
        self.path = Path(self.path)
        handle = self._open()
        for key in ("value/img", "value/gt"):
            if key not in handle:
                raise InputError(self.path, key, "a MATLAB v7.3 cell array of object references (gtsegs_ijcv.mat)")
            dataset = handle[key]
            if dataset.dtype != h5py.ref_dtype or dataset.ndim != 2 or dataset.shape[1] != 1:
                raise InputError(self.path, key, f"an [N, 1] dataset of object references, got "
                                                 f"{dataset.dtype} {dataset.shape}")
        n_images, n_masks = handle["value/img"].shape[0], handle["value/gt"].shape[0]
        if n_images != n_masks:
            raise InputError(self.path, "value/gt", f"as many masks as images ({n_images}), got {n_masks}")
        self._length = n_images

    def _open(self) -> h5py.File:
        if self._file is None:
            try:
                self._file = h5py.File(self.path, "r")
            except FileNotFoundError:
                raise InputError(self.path, "file", "gtsegs_ijcv.mat (no such file)") from None
            except OSError as err:
                raise InputError(self.path, "file", f"a MATLAB v7.3 (HDF5) MAT-file ({err})") from None
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < self._length:
            raise IndexError(index)
        handle = self._open()
        try:
            image = np.asarray(handle[handle["value/img"][index, 0]]).transpose(2, 1, 0)
            cell = handle[handle["value/gt"][index, 0]]
            mask = np.asarray(handle[cell[0, 0]]).transpose(1, 0)
        except (KeyError, ValueError, TypeError) as err:
            raise InputError(self.path, f"value/img|gt[{index}]", f"resolvable object references ({err})") from None
        if image.ndim != 3 or image.shape[2] != 3:
            raise InputError(self.path, f"value/img[{index}]", f"a [3, W, H] uint8 image, got {image.shape[::-1]}")
        if mask.shape != image.shape[:2]:
            raise InputError(self.path, f"value/gt[{index}]",
                             f"a mask of the image's size {image.shape[1]}x{image.shape[0]}, "
                             f"got {mask.shape[1]}x{mask.shape[0]}")
        return np.ascontiguousarray(image, dtype=np.uint8), np.ascontiguousarray(mask, dtype=np.uint8)

    def __iter__(self):
        for index in range(len(self)):
            yield self[index]


def load(path: str | Path) -> ImageNetSeg:
    """Open ``gtsegs_ijcv.mat`` (or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / FILE_NAME
    return ImageNetSeg(path)


def write(path: str | Path, samples: Iterable[tuple[np.ndarray, np.ndarray]]) -> int:
    """Write ``(image uint8 [H,W,3], mask uint8 [H,W])`` pairs as a v7.3 ``gtsegs_ijcv.mat``; return the count."""
    buffer = _io.BytesIO()
    count = 0
    # no timestamps in object headers and a fixed MATLAB header: the same samples give the same bytes
    with h5py.File(buffer, "w", userblock_size=512, track_order=True) as handle:
        refs = handle.create_group("#refs#")
        value = handle.create_group("value")
        value.attrs["MATLAB_class"] = np.bytes_("struct")
        image_refs, mask_refs = [], []
        for image, mask in samples:
            image = np.ascontiguousarray(image, dtype=np.uint8)
            mask = np.ascontiguousarray(mask, dtype=np.uint8)
            if image.ndim != 3 or image.shape[2] != 3 or mask.shape != image.shape[:2]:
                raise ValueError(f"sample {count}: image {image.shape} and mask {mask.shape} do not match")
            stored_image = refs.create_dataset(f"img{count}", data=image.transpose(2, 1, 0), track_times=False)
            stored_image.attrs["MATLAB_class"] = np.bytes_("uint8")
            stored_mask = refs.create_dataset(f"gt{count}", data=mask.transpose(1, 0), track_times=False)
            stored_mask.attrs["MATLAB_class"] = np.bytes_("uint8")
            cell = refs.create_dataset(f"gtcell{count}", data=np.array([[stored_mask.ref]], dtype=h5py.ref_dtype),
                                       track_times=False)
            cell.attrs["MATLAB_class"] = np.bytes_("cell")
            image_refs.append(stored_image.ref)
            mask_refs.append(cell.ref)
            count += 1
        for name, column in (("img", image_refs), ("gt", mask_refs)):
            dataset = value.create_dataset(name, data=np.array(column, dtype=h5py.ref_dtype).reshape(-1, 1),
                                           track_times=False)
            dataset.attrs["MATLAB_class"] = np.bytes_("cell")
    data = bytearray(buffer.getvalue())
    data[:512] = _matlab_header()
    write_bytes(path, bytes(data))
    return count
