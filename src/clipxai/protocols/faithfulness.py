"""Faithfulness of the grounding maps: perturbation curves of the very pairs `clipxai ground` explained.

Each (entry, direction) row of a method's maps files is rebuilt as the pair it explained (docs/protocols.md C):
text->image = the image padded to a square with the phrase's tokens, the image map perturbed patch by patch;
image->text = the image blacked out outside the phrase's mask with the narrative's tokens, the token relevance
perturbed token by token (the tokens are the ones stored beside the map). One row per (entry, direction, curve):
the similarity at each step (``s0`` .. ``s<steps>``) and its area (clipxai.metrics.faithfulness).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from clipxai.artifacts import maps as maps_files
from clipxai.errors import InputError
from clipxai.metrics import faithfulness as fa
from clipxai.protocols.grounding_pairs import explained_image

log = logging.getLogger(__name__)
DIRECTIONS = ("t2i", "i2t")


def read_maps(paths) -> pd.DataFrame:
    """Rows of maps files (clipxai.artifacts.maps): entry_id, direction, image_grid [gh,gw], text [ctx], tokens
    [ctx], padding."""
    records = [{"entry_id": entry_id, "direction": direction, "image_grid": row.image_grid, "text": row.text,
                "tokens": row.tokens, "padding": row.padding}
               for (entry_id, direction), row in maps_files.read_maps(paths).items()]
    return pd.DataFrame.from_records(records, columns=["entry_id", "direction", "image_grid", "text", "tokens",
                                                       "padding"])


def select_rows(dataset, maps: pd.DataFrame, max_entries: int) -> pd.DataFrame:
    """The rows of the first ``max_entries`` entries of the data set (file order; 0 = all), in that order."""
    order = {e.entry_id: i for i, e in enumerate(dataset.entries)}
    unknown = sorted(set(maps["entry_id"]) - set(order))
    if unknown:
        raise InputError(dataset.json_path, "entries", f"entry {unknown[0]} of the maps files")
    maps = maps.assign(_order=maps["entry_id"].map(order), _dir=maps["direction"].map(DIRECTIONS.index))
    maps = maps.sort_values(["_dir", "_order"], kind="stable")
    if max_entries:
        kept = sorted(maps["_order"].unique())[:max_entries]
        maps = maps[maps["_order"].isin(kept)]
    return maps.drop(columns=["_order", "_dir"]).reset_index(drop=True)


def curve_rows(model, dataset, maps: pd.DataFrame, steps: int = 10, baseline: str = "mean",
               batch_size: int = 64) -> pd.DataFrame:
    """Per (entry, direction, curve): ``auc``, ``s0..s<steps>`` and ``excluded_reason`` ("" when scored)."""
    from clipxai.data.transforms import pad_to_square

    entries = {e.entry_id: e for e in dataset.entries}
    value_columns = [f"s{k}" for k in range(steps + 1)]
    records = []
    for direction in DIRECTIONS:
        rows = maps[maps["direction"] == direction]
        usable = []
        for row in rows.itertuples(index=False):
            relevance = row.image_grid if direction == "t2i" else row.text
            if np.all(np.isnan(relevance)):
                reason = "no map"
            elif direction == "i2t" and not np.any(np.isfinite(row.text)):
                reason = "no caption tokens"
            else:
                usable.append(row)
                continue
            for curve in fa.CURVES:
                records.append({"entry_id": row.entry_id, "direction": direction, "curve": curve,
                                "auc": np.nan, "excluded_reason": reason, **{c: np.nan for c in value_columns}})
        for start in tqdm(range(0, len(usable), batch_size), desc=f"faithfulness {direction}", mininterval=10):
            batch = usable[start:start + batch_size]
            images = []
            for row in batch:
                image = explained_image(dataset, entries[row.entry_id], direction)
                images.append(model.preprocess(pad_to_square(image, row.padding)))
            images = torch.stack(images).to(model.device)
            tokens = torch.as_tensor(np.stack([r.tokens for r in batch]), dtype=torch.long, device=model.device)
            if direction == "t2i":
                relevance = torch.as_tensor(np.stack([r.image_grid for r in batch]), dtype=torch.float32)
                curves = fa.image_curves(model, images, tokens, relevance, steps=steps, baseline=baseline)
            else:
                relevance = torch.as_tensor(np.stack([r.text for r in batch]), dtype=torch.float32)
                curves = fa.text_curves(model, images, tokens, relevance, steps=steps)
            for curve, values in curves.items():
                areas = fa.auc(values)
                for row, area, vals in zip(batch, areas, values):
                    records.append({"entry_id": row.entry_id, "direction": direction, "curve": curve,
                                    "auc": float(area), "excluded_reason": "",
                                    **dict(zip(value_columns, vals.tolist()))})
    columns = ["entry_id", "direction", "curve", "auc", "excluded_reason", *value_columns]
    frame = pd.DataFrame.from_records(records, columns=columns)
    # one fixed order whatever the batching: direction, curve, entry (file order of the maps' selection)
    position = {e: i for i, e in enumerate(dict.fromkeys(maps["entry_id"]))}
    frame = frame.assign(_d=frame["direction"].map(DIRECTIONS.index), _c=frame["curve"].map(fa.CURVES.index),
                         _e=frame["entry_id"].map(position))
    return frame.sort_values(["_d", "_c", "_e"], kind="stable").drop(columns=["_d", "_c", "_e"]).reset_index(drop=True)


def with_dataset_entries(curves: pd.DataFrame, maps: pd.DataFrame) -> pd.DataFrame:
    """``curves`` with ``n_dataset_entries``: the entries with maps in its direction, all of them (what
    ``max_entries`` left out is visible downstream, beside each row)."""
    return curves.assign(n_dataset_entries=curves["direction"].map(maps.groupby("direction")["entry_id"].nunique()))


def read_entry_curves(path: str | Path) -> tuple[str, str, str, pd.DataFrame]:
    """(dataset, model, method, rows) of one per-entry faithfulness file results/<d>/<m>/scores/faithfulness/<x>.csv."""
    path = Path(path)
    if len(path.parts) < 5 or path.parts[-2] != "faithfulness":
        raise InputError(path, "(path)", "results/<dataset>/<model>/scores/faithfulness/<method>.csv")
    try:
        frame = pd.read_csv(path, dtype={"entry_id": str}, keep_default_na=False, na_values=[""])
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(path, "(file)", f"per-entry faithfulness curves ({err})") from None
    for column in ("entry_id", "direction", "curve", "auc", "excluded_reason", "s0", "n_dataset_entries"):
        if column not in frame.columns:
            raise InputError(path, column, "a column of the per-entry curves (clipxai faithfulness)")
    frame["excluded_reason"] = frame["excluded_reason"].astype(object).where(frame["excluded_reason"].notna(), "")
    return path.parts[-5], path.parts[-4], path.stem, frame
