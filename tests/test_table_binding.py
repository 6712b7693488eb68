"""table-binding: shapes-world grounding split by whether the phrase's colour alone picks out its object."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from clipxai.cli import main
from clipxai.protocols.tables import colour_subsets
from clipxai.data import png


def _entry(entry_id, image_id, category, thing=True):
    return SimpleNamespace(entry_id=entry_id, image_id=image_id, narrative_index=0, categories=[category],
                           isthing=[thing])


def test_subsets_follow_the_colours_of_the_image_objects():
    entries = [_entry("a", 1, "red circle"), _entry("b", 1, "red star"), _entry("c", 1, "blue square"),
               _entry("d", 2, "green cross"), _entry("e", 2, "textured background", thing=False),
               _entry("f", 3, "pink star"), _entry("g", 3, "green star")]
    assert colour_subsets(entries) == {"a": "colour shared", "b": "colour shared", "c": "colour unique",
                                       "d": "single object", "f": "colour unique", "g": "colour unique"}


@pytest.fixture(scope="module")
def shapes_world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("binding") / "resources/data/shapes"
    assert main(["make-shapes", "--out", str(root), "--format", "coco-png", "--seed", "0", "--n-train", "30",
                 "--n-val", "40", "--image-size", "32", "--held-out", "red star"]) == 0
    return root


def test_table_means_are_the_subsets_means(shapes_world, tmp_path):
    entries = png.load(shapes_world, "val").entries
    subsets = colour_subsets(entries)
    assert set(subsets.values()) == {"single object", "colour unique", "colour shared"}
    rng = np.random.default_rng(0)
    fg = {e.entry_id: float(rng.uniform()) for e in entries}
    rows = [{"entry_id": e.entry_id, "direction": "t2i", "mode": mode, "macro_iou": 0.5, "fg_iou": fg[e.entry_id],
             "excluded_reason": ""} for e in entries for mode in ("faithful", "corrected")]
    rows.append({"entry_id": entries[0].entry_id, "direction": "i2t", "mode": "faithful", "macro_iou": 0.1,
                 "fg_iou": 0.0, "excluded_reason": ""})
    # an excluded entry must not count
    rows[0].update(fg_iou=np.nan, macro_iou=np.nan, excluded_reason="empty_mask_at_input_size")
    scores = tmp_path / "results/shapes/toy/scores/grounding/chefer2021.csv"
    scores.parent.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(scores, index=False)
    out = tmp_path / "results/tables/grounding_binding.csv"
    assert main(["table-binding", "--data", f"shapes={shapes_world}", "--entries", str(scores), "--bootstrap", "50",
                 "--out", str(out)]) == 0
    table = pd.read_csv(out).set_index("subset")
    for subset in ("single object", "colour unique", "colour shared"):
        ids = [eid for eid, s in subsets.items() if s == subset and eid != entries[0].entry_id]
        assert table.loc[subset, "n_entries"] == len(ids)
        assert table.loc[subset, "fg_mean"] == pytest.approx(np.mean([fg[i] for i in ids]))
        assert table.loc[subset, "fg_lo"] <= table.loc[subset, "fg_mean"] <= table.loc[subset, "fg_hi"]
    assert (table["model"] == "toy").all() and (table["method"] == "chefer2021").all()
    assert out.with_suffix(".json").is_file()


def test_summary_file_given_as_entries_is_named_in_one_line(shapes_world, tmp_path, capsys):
    summary = tmp_path / "results/shapes/toy/scores/grounding/chefer2021_summary.csv"
    summary.parent.mkdir(parents=True)
    summary.write_text("direction,mode,n_entries\nt2i,faithful,3\n")
    code = main(["table-binding", "--data", f"shapes={shapes_world}", "--entries", str(summary),
                 "--out", str(tmp_path / "t.csv")])
    assert code == 2
    assert f"{summary}: entry_id: expected a column of the per-entry scores" in capsys.readouterr().err
    assert not (tmp_path / "t.csv").exists()
