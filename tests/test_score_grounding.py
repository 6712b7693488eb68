"""`score-grounding` end to end on a hand-written PNG-format directory and hand-made maps, values worked by hand."""

import argparse
import json

import numpy as np
import pandas as pd
import pytest
from open_clip.tokenizer import SimpleTokenizer
from PIL import Image

from clipxai.artifacts.grounding_table import ENTRY_COLUMNS, SUMMARY_COLUMNS
from clipxai.artifacts.maps import MapRow, read_maps
from clipxai.commands import score_grounding
from clipxai.errors import InputError
from clipxai.io import save_npz
from clipxai.metrics.grounding import binary_ious, prepare_mask
from clipxai.protocols.grounding_scores import score_entries

SIZE = 16          # model input side of the fake model
CAPTION = "a man holding a dog and a ball"
LONG = "a dog " + "very " * 68 + "big ball"   # 72 words, 72 tokens: over the original's 70-word limit, fits 77
TOKENIZER = SimpleTokenizer()


def _write_fixture(root):
    """One 40x30 image with a dog (segment 1) and a ball (segment 2); two narratives, three grounding entries."""
    ids = np.zeros((30, 40), np.int32)
    ids[5:20, 5:25] = 1
    ids[20:28, 30:38] = 2
    (root / "images" / "val2017").mkdir(parents=True)
    (root / "annotations" / "panoptic_val2017").mkdir(parents=True)
    Image.fromarray(np.full((30, 40, 3), 128, np.uint8)).save(root / "images/val2017/000000000001.jpg")
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
    Image.fromarray(rgb).save(root / "annotations/panoptic_val2017/000000000001.png")
    panoptic = {
        "images": [{"id": 1, "file_name": "000000000001.jpg", "width": 40, "height": 30}],
        "annotations": [{"image_id": 1, "file_name": "000000000001.png",
                         "segments_info": [{"id": 1, "category_id": 1, "area": 300, "bbox": [5, 5, 20, 15],
                                            "iscrowd": 0},
                                           {"id": 2, "category_id": 2, "area": 64, "bbox": [30, 20, 8, 8],
                                            "iscrowd": 0}]}],
        "categories": [{"id": 1, "name": "dog", "isthing": 1}, {"id": 2, "name": "ball", "isthing": 1}],
    }
    narratives = [
        {"image_id": "1", "caption": CAPTION, "segments": [
            {"utterance": "a man holding", "segment_ids": [], "noun": False},
            {"utterance": "a dog", "segment_ids": ["1"], "noun": True},
            {"utterance": "and", "segment_ids": [], "noun": False},
            {"utterance": "a ball", "segment_ids": ["2"], "noun": True}]},
        {"image_id": "1", "caption": LONG, "segments": [
            {"utterance": "a dog", "segment_ids": ["1"], "noun": True},
            {"utterance": LONG[len("a dog "):], "segment_ids": [], "noun": False}]},
    ]
    (root / "annotations" / "panoptic_val2017.json").write_text(json.dumps(panoptic))
    (root / "annotations" / "png_coco_val2017.json").write_text(json.dumps(narratives))
    return ids


def _token_row(text):
    tokens = TOKENIZER.encode(text)
    row = np.zeros(77, np.int64)
    row[0], row[1:1 + len(tokens)], row[1 + len(tokens)] = 49406, tokens, 49407
    return row, len(tokens)


def _text_row(text, phrase_tokens):
    """Relevance 0.9 on the phrase's true token positions, 0.1 elsewhere, NaN off the caption."""
    row, n = _token_row(text)
    scores = np.full(77, np.nan, np.float32)
    scores[1:1 + n] = 0.1
    scores[[1 + i for i in phrase_tokens]] = 0.9
    return scores, row


def _write_maps(path, rows):
    save_npz(path, entry_id=np.array([r[0] for r in rows]), direction=np.array([r[1] for r in rows]),
             image_grid=np.stack([r[2] for r in rows]).astype(np.float32),
             text=np.stack([r[3] for r in rows]), tokens=np.stack([r[4] for r in rows]), image_size=np.int64(SIZE))


@pytest.fixture
def scored(tmp_path):
    root = tmp_path / "png"
    ids = _write_fixture(root)
    dog_input = prepare_mask(ids == 1, SIZE, "corrected").astype(np.float32)   # a perfect image map
    no_image = np.full((SIZE, SIZE), np.nan, np.float32)
    no_text = (np.full(77, np.nan, np.float32), _token_row("a dog")[0])
    dog_text = _text_row(CAPTION, [3, 4])
    ball_text = _text_row(CAPTION, [6, 7])
    long_text = _text_row(LONG, [0, 1])
    maps = [tmp_path / "maps" / "0.npz", tmp_path / "maps" / "1.npz"]
    _write_maps(maps[0], [("1_0_1", "t2i", dog_input, *no_text), ("1_1_0", "t2i", dog_input, *no_text),
                          ("1_0_1", "i2t", no_image, *dog_text)])
    _write_maps(maps[1], [("1_0_3", "i2t", no_image, *ball_text), ("1_1_0", "i2t", no_image, *long_text)])

    def run(name):
        parser = argparse.ArgumentParser()
        score_grounding.add_arguments(parser)
        args = parser.parse_args(["--data", str(root), "--maps", *map(str, maps), "--seed", "3",
                                  "--bootstrap", "200", "--out", str(tmp_path / f"{name}.csv"),
                                  "--summary", str(tmp_path / f"{name}_summary.csv")])
        assert score_grounding.run(args) == 0
        return tmp_path / f"{name}.csv", tmp_path / f"{name}_summary.csv"

    run.root, run.maps = root, maps
    return run, ids


def test_scores_exclusions_and_summary_worked_by_hand(scored):
    run, ids = scored
    entries_csv, summary_csv = run("a")
    table = pd.read_csv(entries_csv)
    table["excluded_reason"] = table["excluded_reason"].fillna("")  # an empty cell: not excluded
    assert list(table.columns) == ENTRY_COLUMNS
    got = {(r.direction, r.mode, r.entry_id): (r.macro_iou, r.fg_iou, r.excluded_reason) for r in table.itertuples()}

    # image->text, corrected: the map puts 0.9 exactly on the phrase's tokens -> perfect
    for eid in ("1_0_1", "1_0_3", "1_1_0"):
        assert got[("i2t", "corrected", eid)] == (1.0, 1.0, "")
    # faithful "a dog": list.index("a") = 0 -> labels tokens 0..4; prediction {3, 4} of 8 tokens
    assert got[("i2t", "faithful", "1_0_1")][:2] == pytest.approx(((2 / 5 + 3 / 6) / 2, 2 / 5))
    # faithful "a ball": labels 0..7 (all tokens); background: 6 predicted, none in the target -> IoU 0
    assert got[("i2t", "faithful", "1_0_3")][:2] == pytest.approx(((2 / 8 + 0) / 2, 2 / 8))
    assert got[("i2t", "faithful", "1_1_0")][2] == "over_70_words"

    # text->image: the map is the nearest-resized mask, so corrected is perfect and faithful sees the eroded mask
    for eid in ("1_0_1", "1_1_0"):
        assert got[("t2i", "corrected", eid)] == (1.0, 1.0, "")
        eroded = prepare_mask(ids == 1, SIZE, "faithful")
        expected = binary_ious(prepare_mask(ids == 1, SIZE, "corrected"), eroded)
        assert 0 < expected["fg"] < 1
        assert got[("t2i", "faithful", eid)][:2] == pytest.approx((expected["macro"], expected["fg"]))
    for mode in ("faithful", "corrected"):
        assert np.isnan(got[("t2i", mode, "1_0_3")][0]) and got[("t2i", mode, "1_0_3")][2] == "no_map"

    summary = pd.read_csv(summary_csv).set_index(["direction", "mode"])
    assert list(summary.reset_index().columns) == SUMMARY_COLUMNS
    row = summary.loc[("i2t", "faithful")]
    assert (row.n_entries, row.n_excluded) == (2, 1)
    assert row.macro_mean == pytest.approx((0.45 + 0.125) / 2, abs=1e-6)
    assert row.macro_lo <= row.macro_mean <= row.macro_hi
    row = summary.loc[("i2t", "corrected")]
    assert (row.n_entries, row.n_excluded, row.macro_mean, row.macro_lo, row.macro_hi) == (3, 0, 1.0, 1.0, 1.0)
    assert summary.loc[("t2i", "corrected")].n_excluded == 1


def test_same_inputs_give_byte_identical_tables(scored):
    run, _ = scored
    first, second = run("a"), run("b")
    assert first[0].read_bytes() == second[0].read_bytes()
    assert first[1].read_bytes() == second[1].read_bytes()


def test_maps_for_another_text_are_rejected(tmp_path):
    root = tmp_path / "png"
    _write_fixture(root)
    bad = tmp_path / "bad.npz"
    scores, _ = _text_row(CAPTION, [3, 4])
    _write_maps(bad, [("1_0_1", "i2t", np.zeros((SIZE, SIZE)), scores, _token_row("something else entirely")[0])])
    parser = argparse.ArgumentParser()
    score_grounding.add_arguments(parser)
    args = parser.parse_args(["--data", str(root), "--maps", str(bad), "--out", str(tmp_path / "o.csv"),
                              "--summary", str(tmp_path / "s.csv")])
    with pytest.raises(InputError, match="tokens of 1_0_1"):
        score_grounding.run(args)
    assert not (tmp_path / "o.csv").exists()


def test_truncated_captions_are_counted_exclusions_in_both_modes():
    # 20 words of 5 digit tokens each: 100 tokens (the map holds the first 75), but under 70 words
    from types import SimpleNamespace

    import open_clip

    caption = " ".join(["12345"] * 19 + ["dog"])
    entry = SimpleNamespace(entry_id="e", caption=caption, utterance="dog", char_span=(len(caption) - 3, len(caption)),
                            utterances=(caption[:-4], "dog"), segment_index=1)
    tokens = open_clip.tokenize([caption])[0].numpy()
    text = np.full(77, np.nan, np.float32)
    text[1:76] = 1 / 75
    row = MapRow("m.npz", np.full((2, 2), np.nan), text, tokens, SIZE, "faithful")
    frame = score_entries([entry], None, {("e", "i2t"): row}, ["faithful", "corrected"])
    assert frame["excluded_reason"].tolist() == ["caption_exceeds_context", "raised:context_length"]


def test_a_row_twice_across_shards_is_rejected(tmp_path):
    scores, tokens = _text_row(CAPTION, [3, 4])
    for name in ("0", "1"):
        _write_maps(tmp_path / f"{name}.npz", [("1_0_1", "i2t", np.zeros((SIZE, SIZE)), scores, tokens)])
    with pytest.raises(InputError, match="one row per entry and direction"):
        read_maps([tmp_path / "0.npz", tmp_path / "1.npz"])


def test_max_entries_records_n_of_m_in_the_summary(scored, tmp_path):
    from clipxai.data import png

    run, _ = scored
    _, full_summary = run("full")
    full = pd.read_csv(full_summary)
    assert (full.n_dataset_entries == 3).all() and ((full.n_entries + full.n_excluded) == 3).all()
    root = tmp_path / "png"
    assert [e.entry_id for e in png.load(root, "val").entries[:2]] == ["1_0_1", "1_0_3"]
    dog_text, ball_text = _text_row(CAPTION, [3, 4]), _text_row(CAPTION, [6, 7])
    no_image = np.full((SIZE, SIZE), np.nan, np.float32)
    maps = tmp_path / "maps_first_two.npz"
    _write_maps(maps, [("1_0_1", "i2t", no_image, *dog_text), ("1_0_3", "i2t", no_image, *ball_text)])
    parser = argparse.ArgumentParser()
    score_grounding.add_arguments(parser)
    args = parser.parse_args(["--data", str(root), "--maps", str(maps), "--max-entries", "2", "--bootstrap", "50",
                              "--out", str(tmp_path / "p.csv"), "--summary", str(tmp_path / "p_summary.csv")])
    assert score_grounding.run(args) == 0
    partial = pd.read_csv(tmp_path / "p_summary.csv")
    assert list(partial.columns) == SUMMARY_COLUMNS
    # 2 of the split's 3 entries in scope, whatever was excluded
    assert (partial.n_dataset_entries == 3).all() and ((partial.n_entries + partial.n_excluded) == 2).all()


def _score_alone(root, maps, out, summary):
    parser = argparse.ArgumentParser()
    score_grounding.add_arguments(parser)
    args = parser.parse_args(["--data", str(root), "--maps", *map(str, maps), "--seed", "3", "--bootstrap", "200",
                              "--out", str(out), "--summary", str(summary)])
    assert score_grounding.run(args) == 0


def test_several_methods_in_one_run_write_the_tables_each_writes_alone(scored, tmp_path):
    from clipxai import cli

    run, _ = scored
    root, maps = run.root, run.maps
    # two "methods": all shards, and the second shard alone (no text->image rows: different tables)
    methods = {"both-shards": maps, "shard_1": maps[1:]}
    for label, paths in methods.items():
        _score_alone(root, paths, tmp_path / f"alone-{label}.csv", tmp_path / f"alone-{label}_summary.csv")
    pairs = {"--maps": [f"{label}={p}" for label, paths in methods.items() for p in paths],
             "--out": [f"{label}={tmp_path / 'together' / label}.csv" for label in methods],
             "--summary": [f"{label}={tmp_path / 'together' / label}_summary.csv" for label in methods]}
    # through the CLI: the checks before the verb read LABEL=PATH values as their paths
    assert cli.main(["score-grounding", "--data", str(root), "--method", *methods, "--seed", "3",
                     "--bootstrap", "200", *[v for option, values in pairs.items() for v in (option, *values)]]) == 0
    for label in methods:
        for suffix in ("", "_summary"):
            together = (tmp_path / "together" / f"{label}{suffix}.csv").read_bytes()
            assert together == (tmp_path / f"alone-{label}{suffix}.csv").read_bytes(), (label, suffix)
    # the two methods' tables do differ: a mix-up of the pairs would be seen
    assert (tmp_path / "together" / "shard_1.csv").read_bytes() != (tmp_path / "together" / "both-shards.csv"
                                                                    ).read_bytes()


@pytest.mark.parametrize("change, expected", [
    (lambda a: a + ["--maps", "other=x.npz"], "a label given to --method"),
    (lambda a: [v for v in a if not v.startswith("b=") or not v.endswith("_summary.csv")], "one file of each"),
    (lambda a: [v.replace("b=", "a=") if v.endswith("b.csv") else v for v in a], "one file of each"),
    (lambda a: [v.split("=", 1)[1] if v.endswith("a.csv") else v for v in a], "LABEL=PATH"),
    (lambda a: [v.replace("b_summary.csv", "a_summary.csv") for v in a], "a file of one method only"),
])
def test_labelled_values_must_pair_every_method_with_its_files(scored, tmp_path, change, expected):
    run, _ = scored
    out = tmp_path / "o"
    argv = ["--data", str(run.root), "--method", "a", "b", "--maps", f"a={run.maps[0]}", f"b={run.maps[1]}",
            "--out", f"a={out / 'a.csv'}", f"b={out / 'b.csv'}",
            "--summary", f"a={out / 'a_summary.csv'}", f"b={out / 'b_summary.csv'}"]
    parser = argparse.ArgumentParser()
    score_grounding.add_arguments(parser)
    assert score_grounding.run(parser.parse_args(argv)) == 0  # the unchanged command is fine
    for f in out.iterdir():
        f.unlink()
    with pytest.raises(InputError, match=expected):
        score_grounding.run(parser.parse_args(change(argv)))
    assert not list(out.iterdir())  # nothing written for any method
