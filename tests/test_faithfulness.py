"""Deletion / insertion / perturbation curves on models built to depend on one patch or one token only."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from clipxai.metrics import faithfulness as fa

GRID = 4          # 4 x 4 patches of 4 x 4 pixels
SIDE = 16
CAUSAL = (1, 2)   # the only patch the image tower looks at
CAUSAL_TOKEN = 2  # the only token position the text tower looks at


class OnePatchCLIP(torch.nn.Module):
    """Image embedding [mean of channel 0 over the causal patch, 1]; text [1, 0] if token 2 is set, else [0, 1]."""

    def __init__(self):
        super().__init__()
        self.image_calls = 0
        self.text_calls = 0

    def encode_image(self, x):
        self.image_calls += 1
        r, c = CAUSAL
        value = x[:, 0, r * 4:(r + 1) * 4, c * 4:(c + 1) * 4].mean(dim=(1, 2))
        return torch.stack([value, torch.ones_like(value)], dim=1)

    def encode_text(self, tokens):
        self.text_calls += 1
        present = (tokens[:, CAUSAL_TOKEN] != 0).float()
        return torch.stack([present, 1 - present], dim=1)


def _model():
    return SimpleNamespace(model=OnePatchCLIP(), grid=(GRID, GRID), image_size=SIDE)


def _image(batch=1):
    images = torch.zeros(batch, 3, SIDE, SIDE)
    r, c = CAUSAL
    images[:, 0, r * 4:(r + 1) * 4, c * 4:(c + 1) * 4] = 3.0
    return images


def _one_hot(r, c, batch=1):
    grid = torch.zeros(batch, GRID, GRID)
    grid[:, r, c] = 1.0
    return grid


def _tokens():
    # start, 4 caption tokens, end (the largest id), padding
    return torch.tensor([[49406, 11, 12, 13, 14, 49407, 0, 0]])


def cos(a):  # cos([a, 1], [1, 0])
    return a / math.sqrt(a * a + 1)


def test_removal_counts_are_rounded_tenths():
    assert fa.removal_counts(16, 10) == [0, 2, 3, 5, 6, 8, 10, 11, 13, 14, 16]
    assert fa.removal_counts(4, 10) == [0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4]


def test_deletion_of_the_causal_patch_first_is_the_best_possible_curve_worked_by_hand():
    model = _model()
    texts = _tokens()
    curve = fa.deletion_curve(model, _image(), texts, _one_hot(*CAUSAL), steps=10)[0]
    # image mean of channel 0 is 3 * 16 / 256 = 0.1875: the mean-colour baseline of every removed patch
    full, removed = cos(3.0), cos(0.1875)
    expected = [full] + [removed] * 10  # step 1 already removes 2 patches, the causal one among them
    np.testing.assert_allclose(curve, expected, rtol=1e-6)
    area = fa.auc(curve[None])[0]
    assert area == pytest.approx((full + removed) / 2 * 0.1 + removed * 0.9, rel=1e-6)
    # no other one-hot map does better, and every map ranking another patch first does strictly worse
    areas = {(r, c): fa.auc(fa.deletion_curve(model, _image(), texts, _one_hot(r, c)))[0]
             for r in range(GRID) for c in range(GRID)}
    assert min(areas, key=areas.get) == CAUSAL
    assert all(a > area + 1e-9 for rc, a in areas.items() if rc != CAUSAL)


def test_insertion_and_negative_order_of_the_causal_map_are_the_best_possible():
    model = _model()
    texts = _tokens()
    full, removed = cos(3.0), cos(0.1875)
    ins = fa.insertion_curve(model, _image(), texts, _one_hot(*CAUSAL))[0]
    np.testing.assert_allclose(ins, [removed] + [full] * 10, rtol=1e-6)
    neg = fa.negative_perturbation_curve(model, _image(), texts, _one_hot(*CAUSAL))[0]
    # least relevant first: the causal patch is the last of 16 to go, at step 10 only
    np.testing.assert_allclose(neg, [full] * 10 + [removed], rtol=1e-6)
    # a map ranking the causal patch last gets the worst insertion curve (revealed only at the end)
    worst = -_one_hot(*CAUSAL)
    ins_worst = fa.insertion_curve(model, _image(), texts, worst)[0]
    np.testing.assert_allclose(ins_worst, [removed] * 10 + [full], rtol=1e-6)
    assert fa.auc(ins[None])[0] > fa.auc(ins_worst[None])[0]
    np.testing.assert_allclose(fa.positive_perturbation_curve(model, _image(), texts, _one_hot(*CAUSAL)),
                               fa.deletion_curve(model, _image(), texts, _one_hot(*CAUSAL)))


def test_image_curves_share_their_ends_one_forward_per_step_for_the_whole_batch():
    model = _model()
    batch = 5
    texts = _tokens().expand(batch, -1)
    curves = fa.image_curves(model, _image(batch), texts, torch.rand(batch, GRID, GRID), steps=10)
    assert set(curves) == set(fa.CURVES)
    assert all(c.shape == (batch, 11) for c in curves.values())
    # 2 shared ends + 9 interior steps per curve, each one forward of the whole batch
    assert model.model.image_calls == 2 + 3 * 9
    assert model.model.text_calls == 1


def test_blur_baseline_keeps_a_constant_image_and_smooths_an_edge():
    flat = torch.full((1, 3, 8, 8), 0.5)
    torch.testing.assert_close(fa.image_baseline(flat, "blur", sigma=2.0), flat)
    edge = torch.zeros(1, 3, 8, 8)
    edge[..., 4:] = 1.0
    blurred = fa.image_baseline(edge, "blur", sigma=1.0)
    assert 0 < blurred[0, 0, 0, 3] < 0.5 < blurred[0, 0, 0, 4] < 1
    with pytest.raises(ValueError, match="baseline"):
        fa.image_baseline(edge, "noise")


def test_text_curves_mask_the_causal_token_to_padding():
    model = _model()
    images = _image()
    tokens = _tokens()
    relevance = torch.tensor([[math.nan, 0.1, 0.6, 0.2, 0.1, math.nan, math.nan, math.nan]])  # token 2 first
    full, masked = cos(3.0), 1 / math.sqrt(10)  # image [3, 1] against text [1, 0], then [0, 1]
    deletion = fa.text_deletion_curve(model, images, tokens, relevance, steps=4)[0]
    # 4 caption tokens in 4 steps: one per step; the causal token goes at step 1
    np.testing.assert_allclose(deletion, [full, masked, masked, masked, masked], atol=1e-7)
    insertion = fa.text_insertion_curve(model, images, tokens, relevance, steps=4)[0]
    np.testing.assert_allclose(insertion, [masked, full, full, full, full], atol=1e-7)
    negative = fa.text_negative_perturbation_curve(model, images, tokens, relevance, steps=4)[0]
    np.testing.assert_allclose(negative, [full, full, full, full, masked], atol=1e-7)
    # one image forward, then 2 shared ends + 3 interior steps per curve
    model = _model()
    curves = fa.text_curves(model, images, tokens, relevance, steps=4)
    assert model.model.image_calls == 1 and model.model.text_calls == 2 + 3 * 3
    assert set(curves) == set(fa.CURVES)


def test_rank_positions_puts_invalid_parts_last_and_breaks_ties_by_position():
    rel = torch.tensor([[0.5, 0.5, 0.9, 0.1]])
    assert fa.rank_positions(rel, "positive").tolist() == [[1, 2, 0, 3]]
    assert fa.rank_positions(rel, "negative").tolist() == [[1, 2, 3, 0]]
    valid = torch.tensor([[True, False, True, True]])
    assert fa.rank_positions(rel, "positive", valid).tolist() == [[1, 3, 0, 2]]


def test_auc_trapezoids_and_checks():
    assert fa.auc(np.array([[1.0, 0.0]]))[0] == pytest.approx(0.5)
    assert fa.auc(np.array([0.0, 1.0, 1.0]))== pytest.approx(0.75)
    with pytest.raises(ValueError):
        fa.image_curves(_model(), _image(), torch.zeros(1, 8, dtype=torch.long), torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match="unknown curve"):
        fa.image_curves(_model(), _image(), torch.zeros(1, 8, dtype=torch.long), _one_hot(0, 0), curves=("x",))


def test_verbs_score_ground_maps_of_both_directions_and_tabulate_them(tmp_path):
    import json

    import pandas as pd

    from clipxai import cli
    from clipxai.data import shapes

    data = tmp_path / "shapes"
    shapes.write_coco_png(data, shapes.ShapesConfig(seed=2, image_size=32), n_train=2, n_val=3, progress=False)
    model = tmp_path / "tiny.json"
    model.write_text(json.dumps({"embed_dim": 32, "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64,
                                                                  "layers": 2, "head_width": 32},
                                 "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2,
                                              "layers": 2}}))
    entries = []
    for method in ("random", "chefer2021"):
        maps = tmp_path / "results" / "shapes" / "tiny" / "maps" / method / "0.npz"
        assert cli.main(["ground", "--data", str(data), "--model", str(model), "--method", method,
                         "--out", str(maps)]) == 0
        out = tmp_path / "results" / "shapes" / "tiny" / "scores" / "faithfulness" / f"{method}.csv"
        assert cli.main(["faithfulness", "--data", str(data), "--model", str(model), "--maps", str(maps),
                         "--steps", "5", "--max-entries", "2", "--batch-size", "3", "--out", str(out)]) == 0
        entries.append(str(out))
    rows = pd.read_csv(entries[1], keep_default_na=False, na_values=[""])
    assert len(rows) == 2 * 2 * 3 and set(rows["direction"]) == {"t2i", "i2t"}
    values = rows[[f"s{k}" for k in range(6)]].to_numpy()
    np.testing.assert_allclose(rows["auc"], fa.auc(values), rtol=1e-5)
    # shared ends: deletion starts where negative starts (the pair itself) and ends where insertion starts
    t2i = rows[rows["direction"] == "t2i"].set_index(["entry_id", "curve"])
    for entry in set(rows["entry_id"]):
        assert t2i.loc[(entry, "deletion"), "s0"] == t2i.loc[(entry, "negative"), "s0"]
        assert t2i.loc[(entry, "deletion"), "s5"] == t2i.loc[(entry, "insertion"), "s0"]
    table = tmp_path / "faithfulness.csv"
    assert cli.main(["table-faithfulness", "--entries", *entries, "--bootstrap", "20", "--out", str(table)]) == 0
    frame = pd.read_csv(table, keep_default_na=False, na_values=[""])
    assert len(frame) == 2 * 2 * 3 and (frame["n_entries"] == 2).all()
    # --max-entries 2 of more: every row is partial, and the report says how partial
    from clipxai.report.layouts import row_coverage

    total = int(rows["n_dataset_entries"].max())
    assert total > 2 and not frame["complete"].any() and (frame["n_dataset_entries"] == total).all()
    assert row_coverage(frame.iloc[0].to_dict()) == f"2 of {total} entries"
    # without --max-entries every entry with maps is curved: complete, no coverage note
    whole = tmp_path / "whole" / "shapes" / "tiny" / "scores" / "faithfulness" / "random.csv"
    assert cli.main(["faithfulness", "--data", str(data), "--model", str(model), "--maps",
                     str(tmp_path / "results" / "shapes" / "tiny" / "maps" / "random" / "0.npz"), "--steps", "5",
                     "--batch-size", "3", "--out", str(whole)]) == 0
    whole_table = tmp_path / "whole.csv"
    assert cli.main(["table-faithfulness", "--entries", str(whole), "--bootstrap", "20", "--out",
                     str(whole_table)]) == 0
    whole_frame = pd.read_csv(whole_table, keep_default_na=False, na_values=[""])
    assert whole_frame["complete"].all() and (whole_frame["n_entries"] + whole_frame["n_excluded"] == total).all()
    assert row_coverage(whole_frame.iloc[0].to_dict()) is None
    assert frame[frame["method"] == "random"]["vs_random_mean"].isna().all()
    assert frame[frame["method"] == "chefer2021"]["vs_random_mean"].notna().all()
    figure = tmp_path / "faithfulness_curves.png"
    assert cli.main(["figure-faithfulness", "--entries", *entries, "--out", str(figure)]) == 0
    assert figure.is_file() and json.loads(figure.with_suffix(".json").read_text())["section"] == "grounding"


@pytest.fixture(scope="module")
def grounded(tmp_path_factory):
    """The shapes world, a tiny random CLIP config and two methods' maps in two shards each."""
    import json

    from clipxai import cli
    from clipxai.data import shapes

    root = tmp_path_factory.mktemp("faithfulness")
    data = root / "shapes"
    shapes.write_coco_png(data, shapes.ShapesConfig(seed=2, image_size=32), n_train=2, n_val=3, progress=False)
    model = root / "tiny.json"
    model.write_text(json.dumps({"embed_dim": 32, "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64,
                                                                  "layers": 2, "head_width": 32},
                                 "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2,
                                              "layers": 2}}))
    maps = {}
    for method in ("random", "rollout"):
        for shard in (0, 1):
            torch.manual_seed(0)
            out = root / "maps" / method / f"{shard}.npz"
            assert cli.main(["ground", "--data", str(data), "--model", str(model), "--method", method,
                             "--shard", str(shard), "--shards", "2", "--out", str(out)]) == 0
            maps.setdefault(method, []).append(str(out))
    return {"data": data, "model": model, "maps": maps}


def _faithfulness(grounded, *argv):
    from clipxai import cli

    torch.manual_seed(0)  # the json config's random weights: the same model in every run
    return cli.main(["faithfulness", "--data", str(grounded["data"]), "--model", str(grounded["model"]),
                     "--steps", "4", "--batch-size", "2", *map(str, argv)])


def test_several_methods_write_the_curves_each_writes_alone(grounded, tmp_path):
    methods = list(grounded["maps"])
    pairs = [f"{m}={path}" for m in methods for path in grounded["maps"][m]]
    outs = [f"{m}={tmp_path / 'together' / m}.csv" for m in methods]
    assert _faithfulness(grounded, "--method", *methods, "--maps", *pairs, "--out", *outs) == 0
    for method in methods:
        alone = tmp_path / "alone" / f"{method}.csv"
        assert _faithfulness(grounded, "--maps", *grounded["maps"][method], "--out", alone) == 0
        assert (tmp_path / "together" / f"{method}.csv").read_bytes() == alone.read_bytes(), method
    import pandas as pd

    rows = {m: pd.read_csv(tmp_path / "together" / f"{m}.csv") for m in methods}
    # both shards of each method were read (one row per map row and curve), and each file is its method's
    for method, frame in rows.items():
        map_rows = sum(len(np.load(path)["entry_id"]) for path in grounded["maps"][method])
        assert len(frame) == 3 * map_rows and map_rows > len(np.load(grounded["maps"][method][0])["entry_id"])
    assert not np.array_equal(rows["random"]["auc"].to_numpy(), rows["rollout"]["auc"].to_numpy())


@pytest.mark.parametrize("argv, expected", [
    (["--maps", "M0", "--out", "a.csv", "b.csv"], "several methods need --method"),
    (["--method", "random", "rollout", "--maps", "random=M0", "rollout=M1", "--out", "random=a.csv"],
     "one file of each --method, got 0"),
    (["--method", "random", "rollout", "--maps", "random=M0", "rollout=M1", "--out", "random=a.csv",
      "rollout=a.csv"], "a file of one method only"),
    (["--method", "random", "--maps", "random=M0", "rollout=M1", "--out", "random=a.csv"],
     "a label given to --method"),
    (["--method", "random", "rollout", "--maps", "random=M0", "--out", "random=a.csv", "rollout=b.csv"],
     "at least one maps file of each --method"),
    # the second method's maps name an entry the data set lacks: found before any curve is written
    (["--method", "random", "rollout", "--maps", "random=M0", "rollout=BAD", "--out", "random=a.csv",
      "rollout=b.csv"], "entries"),
])
def test_a_bad_method_list_writes_no_method_s_file(grounded, tmp_path, capsys, argv, expected):
    bad = tmp_path / "inputs" / "bad.npz"
    bad.parent.mkdir()
    with np.load(grounded["maps"]["rollout"][0]) as data:
        arrays = {key: data[key] for key in data.files}
    # distinct ids (one row per entry and direction), none of them the data set's
    ids = [f"no-such-entry-{entry_id}" for entry_id in arrays["entry_id"]]
    np.savez(bad, **{**arrays, "entry_id": np.array(ids)})
    names = {"M0": grounded["maps"]["random"][0], "M1": grounded["maps"]["rollout"][0], "BAD": str(bad)}
    out = tmp_path / "out"
    values = []
    for value in argv:
        label, sep, path = value.rpartition("=")
        path = names.get(path, str(out / path) if path.endswith(".csv") else path)
        values.append(f"{label}{sep}{path}")
    assert _faithfulness(grounded, *values) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("clipxai faithfulness: error: ") and expected in errors[0], errors
    assert not out.exists() or not list(out.iterdir())
