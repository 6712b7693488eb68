"""Waterbirds (Sagawa et al., ICLR 2020): ``metadata.csv`` plus images in per-class folders, read and written.

Layout (``waterbird_complete95_forest2water2.tar.gz`` unpacks to it)::

    <root>/metadata.csv        img_id, img_filename, y, split, place, place_filename
    <root>/<NNN.Class_name>/<image>.jpg

``y`` is the bird class (0 landbird, 1 waterbird), ``place`` the background (0 land, 1 water), ``split`` 0 train,
1 val, 2 test (5,794 test images). ``img_filename`` is relative to ``root``; ``place_filename`` names the Places
image the background came from (informational). Worst-group accuracy is the minimum over the four (y, place)
groups.
"""

from __future__ import annotations

import io as _io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from clipxai.errors import InputError
from clipxai.io import write_text

COLUMNS: tuple[str, ...] = ("img_id", "img_filename", "y", "split", "place", "place_filename")
SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class WaterbirdsRecord:
    img_id: int
    img_filename: str
    path: Path
    y: int            # 0 landbird, 1 waterbird
    split: int        # 0 train, 1 val, 2 test
    place: int        # 0 land, 1 water
    place_filename: str

    @property
    def group(self) -> int:
        """The (y, place) group as one number: 2 y + place (0..3)."""
        return 2 * self.y + self.place


def _split_code(split: int | str) -> int:
    if isinstance(split, str):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)} or 0/1/2, got {split!r}")
        return SPLITS[split]
    if split not in (0, 1, 2):
        raise ValueError(f"split must be 0, 1 or 2, got {split!r}")
    return int(split)


def load(root: str | Path, split: int | str | None = None, check_files: bool = True) -> list[WaterbirdsRecord]:
    """Records of ``metadata.csv`` (one split, or all when ``split`` is None), in file order."""
    root = Path(root)
    path = root / "metadata.csv"
    try:
        frame = pd.read_csv(path, dtype={"img_filename": str, "place_filename": str}, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(path, "file", "Waterbirds metadata.csv (no such file)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(path, "file", f"a CSV file ({err})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(path, "columns", f"{', '.join(COLUMNS)}; missing {', '.join(missing)}")
    allowed = {"y": {0, 1}, "place": {0, 1}, "split": {0, 1, 2}}
    for column in ("img_id", "y", "split", "place"):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | (values != values.round())
        if column in allowed:
            bad |= ~values.isin(allowed[column])
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            expected = "an integer" if column == "img_id" else " or ".join(map(str, sorted(allowed[column])))
            raise InputError(path, f"row {row + 2} (img_id {frame['img_id'].iloc[row]}): {column}",
                             f"{expected}, got {str(frame[column].iloc[row])!r}")
        frame[column] = values.astype(int)
    if split is not None:
        frame = frame[frame["split"] == _split_code(split)]
    records = [WaterbirdsRecord(img_id=int(r.img_id), img_filename=r.img_filename, path=root / r.img_filename,
                                y=int(r.y), split=int(r.split), place=int(r.place), place_filename=r.place_filename)
               for r in frame.itertuples(index=False)]
    if check_files:
        for record in records:
            if not record.path.exists():
                raise InputError(path, f"img_id {record.img_id}: img_filename",
                                 f"an existing image file, {record.img_filename} is missing")
    return records


def write_metadata(root: str | Path, records: list[dict]) -> Path:
    """Write ``metadata.csv`` (the columns above, in that order) for dicts with those keys."""
    frame = pd.DataFrame([{c: record[c] for c in COLUMNS} for record in records], columns=list(COLUMNS))
    buffer = _io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    path = Path(root) / "metadata.csv"
    write_text(path, buffer.getvalue())
    return path
