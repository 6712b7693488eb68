"""The heads workflow's verbs (rules/heads.smk), each run in-process on tiny inputs: a 2-layer random CLIP saved
as a model folder, the shapes world in ImageNet-segmentation and Waterbirds formats, and synthetic decompositions
where an answer is known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from clipxai.cli import main
from clipxai.data import shapes, waterbirds
from clipxai.errors import InputError

torch.set_num_threads(1)

N_SEG = 12


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A random-weight tiny CLIP folder (fixed weights: every verb loads the same model) and two shapes sets."""
    from safetensors.torch import save_file

    from clipxai.models.registry import load_model
    from clipxai.models.toy import tiny_config

    root = tmp_path_factory.mktemp("heads_world")
    config = tiny_config(image_size=32, patch_size=8, width=32, layers=2, head_width=16, text_width=32,
                         text_layers=1, text_heads=2, embed_dim=32)
    (root / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    loaded = load_model(str(root / "config.json"))
    model = root / "model"
    model.mkdir()
    (model / "open_clip_config.json").write_text(json.dumps({"model_cfg": config}))
    save_file(loaded.model.state_dict(), str(model / "open_clip_model.safetensors"))
    world_config = shapes.ShapesConfig(seed=3, image_size=32)
    shapes.write_imagenet_seg(root / "seg", world_config, n_images=N_SEG, progress=False)
    shapes.write_waterbirds(root / "wb", world_config, n_train=0, n_val=12, n_test=12, progress=False)
    return {"root": root, "model": model, "seg": root / "seg", "wb": root / "wb"}


def run(*argv) -> None:
    assert main([str(a) for a in argv]) == 0


@pytest.fixture(scope="module")
def decomposed(world) -> dict[str, Path]:
    """The seg set decomposed in two shards, its classifier and a text pool."""
    out = world["root"] / "results"
    for shard in (0, 1):
        run("decompose-dataset", "--data", world["seg"], "--format", "imagenet-seg", "--model", world["model"],
            "--shard", shard, "--shards", 2, "--spatial-layers=-1", "--batch-size", 5, "--device", "cpu",
            "--out", out / f"dec/{shard}")
    run("zeroshot-classifier", "--data", world["seg"], "--format", "imagenet-seg", "--model", world["model"],
        "--templates", "caption", "--device", "cpu", "--out", out / "classifier.npy")
    run("text-pool", "--out", out / "pool.txt")
    return {"shards": [out / "dec/0", out / "dec/1"], "classifier": out / "classifier.npy",
            "pool": out / "pool.txt", "out": out}


def test_text_pool_fits_the_toy_context_names_the_places_and_is_fixed(tmp_path):
    import open_clip

    run("text-pool", "--out", tmp_path / "a.txt")
    run("text-pool", "--out", tmp_path / "b.txt")
    assert (tmp_path / "a.txt").read_bytes() == (tmp_path / "b.txt").read_bytes()
    lines = (tmp_path / "a.txt").read_text().splitlines()
    assert len(lines) == len(set(lines)) > 100
    assert {"sand", "water", "a red circle", "a striped background"} <= set(lines)
    tokens = open_clip.get_tokenizer("ViT-B-32")(lines)  # context 77: nothing is cut here
    assert int(tokens.argmax(-1).max()) < 16  # the end token of every line fits the toy CLIP's 16-token context


def test_decompose_dataset_shards_partition_the_images_with_their_own_labels(world, decomposed):
    from clipxai.models.decompose import load_decomposition
    from clipxai.models.registry import load_model
    from clipxai.protocols.datasets import open_images, square_input

    parts = [load_decomposition(path) for path in decomposed["shards"]]
    ids = [list(np.asarray(p["ids"])) for p in parts]
    assert ids[0] == [str(i) for i in range(0, N_SEG, 2)] and ids[1] == [str(i) for i in range(1, N_SEG, 2)]
    meta = json.loads((world["seg"] / "gtsegs_ijcv_labels.json").read_text())
    for part in parts:  # labels come from the labels file by id, not from row order
        expected = [meta["classes"].index(meta["labels"][int(i)]) for i in np.asarray(part["ids"])]
        assert np.asarray(part["labels"]).tolist() == expected
        assert part["attn"].shape[1:3] == (2, 2) and part["spatial"].shape[1] == 1
        assert np.asarray(part["spatial_layers"]).tolist() == [1]
    # the stored terms add up to the model's own normalised embedding of the same (square-resized) images
    loaded = load_model(str(world["model"]))
    data = open_images("imagenet-seg", world["seg"])
    images = torch.stack([square_input(loaded)(data.image(int(i))) for i in ids[1]])
    with torch.no_grad():
        embedding = F.normalize(loaded.model.encode_image(images), dim=-1).numpy()
    total = np.asarray(parts[1]["attn"]).sum((1, 2)) + np.asarray(parts[1]["mlp"]).sum(1)
    np.testing.assert_allclose(total, embedding, atol=2e-5)


def test_zeroshot_classifier_columns_are_the_class_prompts(world, decomposed):
    from clipxai.models.registry import load_model

    weights = np.load(decomposed["classifier"])
    classes = json.loads(decomposed["classifier"].with_suffix(".json").read_text())
    assert classes["classnames"] == list(shapes.COMBINATIONS) and classes["attribution_prompt"] == "a {}"
    loaded = load_model(str(world["model"]))
    with torch.no_grad():
        text = F.normalize(loaded.model.encode_text(loaded.tokenizer(["a blue star"])), dim=-1)[0].numpy()
    np.testing.assert_allclose(weights[:, shapes.COMBINATIONS.index("blue star")], text, atol=1e-5)


def test_segment_maps_are_scored_against_the_mask_of_the_same_id(world, decomposed, tmp_path):
    from clipxai.protocols.datasets import open_images

    maps = tmp_path / "maps"
    for label, method in (("decomposition", "decomposition"), ("raw-attention", "raw-attention")):
        for shard in (0, 1):
            run("segment-imagenet", "--data", world["seg"], "--model", world["model"], "--classifier",
                decomposed["classifier"], "--method", method, "--label", label, "--shard", shard, "--shards", 2,
                "--device", "cpu", "--out", maps / f"{label}_{shard}.npz")
    stored = np.load(maps / "decomposition_0.npz")
    assert stored["image_grid"].shape == (N_SEG // 2, 4, 4) and stored["ids"].tolist() == ["0", "2", "4", "6", "8", "10"]
    # the predicted class is the classifier's argmax over the stored decomposition's embedding
    from clipxai.models.decompose import load_decomposition

    part = load_decomposition(decomposed["shards"][0])
    embedding = np.asarray(part["attn"]).sum((1, 2)) + np.asarray(part["mlp"]).sum(1)
    assert stored["predicted"].tolist() == (embedding @ np.load(decomposed["classifier"])).argmax(1).tolist()

    # Oracle maps (each image's own mask, pooled to the grid) stored in reversed order: scoring must find every
    # row's mask by id. Inverted oracles must score far worse.
    data = open_images("imagenet-seg", world["seg"])
    order = list(range(N_SEG))[::-1]
    oracle = np.stack([np.asarray(Image.fromarray(data.mask(i) * 255).resize((4, 4), Image.BOX), np.float32) / 255
                       for i in order])
    common = dict(labels=np.full(N_SEG, -1), predicted=np.zeros(N_SEG, np.int64),
                  faithful_predicted=np.zeros(N_SEG, np.int64), image_size=np.int64(32), method=np.array("oracle"),
                  params=np.array("{}"))

    def oracle_maps(name, grid):  # the same maps in both geometries (the world's images are square)
        np.savez(maps / f"{name}.npz", ids=np.array([str(i) for i in order]), image_grid=grid,
                 faithful_image_grid=grid, label=np.array(name), **common)

    oracle_maps("oracle", oracle)
    oracle_maps("inverted", 1 - oracle)
    # each id given the oracle of another image: what matching masks by row order instead of id would score
    oracle_maps("mismatched", np.roll(oracle, 1, axis=0))
    out = tmp_path / "results/seg/tiny/scores/imagenet_segmentation.csv"
    run("score-segmentation", "--data", world["seg"], "--maps", *sorted(maps.glob("decomposition_*.npz")),
        *sorted(maps.glob("raw-attention_*.npz")), maps / "oracle.npz", maps / "inverted.npz",
        maps / "mismatched.npz", "--out", out)
    both = pd.read_csv(out)
    assert both["mode"].tolist() == ["faithful", "corrected"] * 5
    scores = both[both["mode"] == "corrected"].set_index("method")
    assert list(scores.index) == ["decomposition", "raw-attention", "oracle", "inverted", "mismatched"]
    # square images at the input size: both geometries feed the model the same pixels, so the maps agree and
    # the two modes can differ only where a map is constant
    assert stored["faithful_image_grid"].tolist() == stored["image_grid"].tolist()
    assert stored["faithful_predicted"].tolist() == stored["predicted"].tolist()
    assert (scores["n_images"] == N_SEG).all()
    assert scores.loc["oracle", "map"] > 0.9 and scores.loc["oracle", "miou"] > 0.45
    # (the world is seeded, so these numbers are fixed: oracle mIoU 0.50 / mAP 0.99 at a 4x4 grid, another
    # image's oracle 0.39 / 0.93, inverted 0.10 / 0.36)
    assert scores.loc["inverted", "miou"] < 0.2 and scores.loc["inverted", "map"] < 0.5
    assert scores.loc["mismatched", "miou"] < scores.loc["oracle", "miou"] - 0.08
    assert scores.loc["mismatched", "map"] < scores.loc["oracle", "map"] - 0.04
    assert scores[["pixel_accuracy", "miou", "map"]].apply(lambda c: c.between(0, 1)).all().all()

    run("table-imagenet-seg", "--scores", out, "--out-csv", tmp_path / "t.csv", "--out-md", tmp_path / "t.md")
    table = pd.read_csv(tmp_path / "t.csv", keep_default_na=False).set_index("method")
    assert set(table["dataset"]) == {"seg"} and set(table["model"]) == {"tiny"}
    assert table.loc["oracle", "miou_corrected"] == pytest.approx(scores.loc["oracle", "miou"])
    assert table.loc["oracle", "differs"] == ""  # no constant oracle map: the modes agree
    assert "| oracle |" in (tmp_path / "t.md").read_text()
    sidecar = json.loads((tmp_path / "t.json").read_text())
    assert {"title", "caption", "rule", "command", "inputs"} <= set(sidecar)


def test_score_segmentation_refuses_an_image_twice(world, decomposed, tmp_path):
    from clipxai.commands.score_segmentation import read_maps

    run("segment-imagenet", "--data", world["seg"], "--model", world["model"], "--classifier",
        decomposed["classifier"], "--method", "random", "--shard", 0, "--shards", 2, "--device", "cpu",
        "--out", tmp_path / "random_0.npz")
    np.savez(tmp_path / "copy.npz", **dict(np.load(tmp_path / "random_0.npz")))  # shard 0 given twice
    with pytest.raises(InputError, match="once over the shards"):
        read_maps([str(tmp_path / "random_0.npz"), str(tmp_path / "copy.npz")])


def test_select_heads_matches_whole_words_and_ranks_by_matching_variance():
    from clipxai.protocols.selection import select_heads, selected_pairs

    rows = []
    texts = {(3, 0): [("a photo of the sea", 0.2), ("a red dog", 0.1)],
             (3, 1): [("a sandwich", 0.5), ("a cat", 0.1)],  # "sandwich" is not "sand"
             (2, 1): [("sand dunes", 0.05), ("water", 0.05)],
             (2, 0): [("a beach", 0.4), ("a lake", 0.3)]}
    for (layer, head), items in texts.items():
        rows += [{"layer": layer, "head": head, "rank": r, "text": t, "variance_explained": v}
                 for r, (t, v) in enumerate(items)]
    heads = pd.DataFrame(rows)
    words = ["sand", "sea", "water", "beach", "lake"]
    table = select_heads(heads, words)
    assert selected_pairs(table) == [(2, 0), (2, 1), (3, 0)]
    assert table.set_index(["layer", "head"]).loc[(3, 1), "n_matching"] == 0
    assert selected_pairs(select_heads(heads, words, min_texts=2)) == [(2, 0), (2, 1)]
    assert selected_pairs(select_heads(heads, words, max_heads=1)) == [(2, 0)]  # largest matching share
    assert selected_pairs(select_heads(heads, words, max_heads=2)) == [(2, 0), (3, 0)]


def synthetic_waterbirds(root: Path, n_per_group: dict[str, int]) -> None:
    """metadata.csv (+ empty image files) for val and test splits and decomposition .npz files in which head
    (1, 0) writes the background and the bird class is written, more weakly, by head (1, 1)."""
    from clipxai.seeding import rng

    draw = rng(0, "synthetic-waterbirds")
    dim, records, img_id = 8, [], 0
    class_direction, place_direction = np.eye(dim)[0], np.eye(dim)[1]
    for split_name, split, agree in (("val", 1, 0.95), ("test", 2, None)):
        n = n_per_group[split_name]
        if agree is None:
            groups = [(g // 2, g % 2) for g in range(4) for _ in range(n // 4)]
        else:
            groups = [(y, y) for y in (0, 1) for _ in range(int(n * agree) // 2)]
            groups += [(y, 1 - y) for y in (0, 1) for _ in range((n - int(n * agree)) // 2)]
        attn = draw.normal(scale=0.01, size=(len(groups), 2, 2, dim))
        mlp = draw.normal(scale=0.01, size=(len(groups), 3, dim))
        ids = []
        for row, (y, place) in enumerate(groups):
            img_id += 1
            ids.append(str(img_id))
            attn[row, 1, 1] += (0.5 if y else -0.5) * class_direction  # the bird, weakly
            attn[row, 1, 0] += (1.0 if place else -1.0) * (class_direction + place_direction)  # the background
            (root / f"{img_id}.jpg").write_bytes(b"")
            records.append({"img_id": img_id, "img_filename": f"{img_id}.jpg", "y": y, "split": split,
                            "place": place, "place_filename": ""})
        np.savez(root / f"{split_name}.npz", attn=attn.astype(np.float32), mlp=mlp.astype(np.float32),
                 labels=np.array([y for y, _ in groups]), ids=np.array(ids))
    waterbirds.write_metadata(root, records)


def test_waterbirds_ablation_of_the_background_head_raises_worst_group(tmp_path):
    synthetic_waterbirds(tmp_path, {"val": 40, "test": 40})
    classifier = np.zeros((8, 2), np.float32)
    classifier[0] = [-1, 1]  # class 1 ("waterbird") along the class direction
    np.save(tmp_path / "classifier.npy", classifier)
    heads = pd.DataFrame([{"layer": 1, "head": 0, "rank": 0, "text": "a photo of water", "variance_explained": 0.6},
                          {"layer": 1, "head": 1, "rank": 0, "text": "a bird", "variance_explained": 0.5},
                          {"layer": 0, "head": 0, "rank": 0, "text": "a lake", "variance_explained": 0.1}])
    heads.to_csv(tmp_path / "heads.csv", index=False)
    run("select-heads", "--heads", tmp_path / "heads.csv", "--words", "water", "--max-heads", 1,
        "--out", tmp_path / "selection.csv")
    out = tmp_path / "results/wb/tiny/waterbirds/ablation.csv"
    run("waterbirds-ablation", "--data", tmp_path, "--decomposition", tmp_path / "test.npz", "--reference",
        tmp_path / "val.npz", "--classifier", tmp_path / "classifier.npy", "--selection", tmp_path / "selection.csv",
        "--layers", 1, "--controls", 2, "--out", out)
    result = pd.read_csv(out, keep_default_na=False)
    before, after, own_means, setting, setting_heads, control = result.to_dict("records")
    assert before["worst_group"] == 0.0 and before["mean"] == 0.5  # the background decides every prediction
    assert after["heads"] == "L1.H0" and after["means_from"].startswith("reference")
    assert after["worst_group"] == 1.0 and after["worst_group_change"] == 1.0
    assert own_means["means_from"] == "evaluated split" and own_means["worst_group"] == 1.0
    # the original's setting (layer 0 and the MLPs ablated too) keeps the shortcut until the head goes
    assert setting["condition"].startswith("original setting") and setting["worst_group"] == 0.0
    assert setting_heads["heads"] == "L1.H0" and setting_heads["worst_group"] == 1.0
    assert control["draws"] == 2 and control["n_heads"] == 1  # both other heads, each once
    assert control["worst_group"] < 1.0  # ablating other heads does not remove the shortcut
    finding = json.loads(out.with_suffix(".json").read_text())["finding"]
    assert "raised worst-group accuracy by 100.0 points" in finding

    run("table-waterbirds", "--results", out, "--out-csv", tmp_path / "w.csv", "--out-md", tmp_path / "w.md")
    markdown = (tmp_path / "w.md").read_text()
    assert finding in markdown and "landbird on water (%)" in markdown
    assert pd.read_csv(tmp_path / "w.csv")["dataset"].eq("wb").all()


def test_waterbirds_ablation_refuses_ids_that_are_not_in_the_evaluated_split(tmp_path, capsys):
    synthetic_waterbirds(tmp_path, {"val": 40, "test": 40})
    np.save(tmp_path / "classifier.npy", np.zeros((8, 2), np.float32))
    pd.DataFrame([{"layer": 1, "head": 0, "n_texts": 1, "n_matching": 1, "matching_share": 0.5,
                   "matched_texts": "water", "matched_words": "water", "selected": True}]).to_csv(
        tmp_path / "selection.csv", index=False)
    # the validation shard evaluated as if it were the test split: one error line, exit status 2, no output
    status = main(["waterbirds-ablation", "--data", str(tmp_path), "--decomposition", str(tmp_path / "val.npz"),
                   "--reference", str(tmp_path / "val.npz"), "--classifier", str(tmp_path / "classifier.npy"),
                   "--selection", str(tmp_path / "selection.csv"), "--out", str(tmp_path / "x.csv")])
    assert status == 2 and not (tmp_path / "x.csv").exists()
    assert "every image id of the decomposition" in capsys.readouterr().err


def test_explain_then_tables_and_neighbour_figure(world, decomposed, tmp_path):
    heads_dir = tmp_path / "results/seg/tiny/heads"
    for label, options in (("textspan", ["--algorithm", "textspan", "--m", 3]),
                           ("principal-corrected", ["--algorithm", "principal", "--mode", "corrected", "--m", 2]),
                           ("principal-faithful", ["--algorithm", "principal", "--mode", "faithful", "--m", 2])):
        run("explain-heads", "--decomposition", *decomposed["shards"], "--texts", decomposed["pool"], "--model",
            world["model"], "--layers", 1, *options, "--classifier", decomposed["classifier"],
            "--out", heads_dir / f"{label}.csv")
    run("table-heads", "--heads", heads_dir / "textspan.csv", heads_dir / "principal-corrected.csv",
        heads_dir / "principal-faithful.csv",
        "--out-texts-csv", tmp_path / "texts.csv", "--out-texts-md", tmp_path / "texts.md",
        "--out-accuracy-csv", tmp_path / "acc.csv", "--out-accuracy-md", tmp_path / "acc.md")
    texts = pd.read_csv(tmp_path / "texts.csv", keep_default_na=False)
    textspan_rows = texts[texts["algorithm"] == "textspan"]
    assert list(zip(textspan_rows["layer"], textspan_rows["head"])) == [(1, 0), (1, 1)]
    assert all(len(t.split("; ")) == 3 for t in textspan_rows["top_texts"])
    principal_rows = texts[texts["algorithm"] == "principal-corrected"]
    assert (principal_rows["bottom_texts"] != "").all() and (principal_rows["component"] != "").all()
    # faithful shares: over the kept singular values, so they add up to 1 per head; corrected: below 1
    faithful_rows = texts[texts["algorithm"] == "principal-faithful"]
    np.testing.assert_allclose(faithful_rows.groupby(["layer", "head"])["share"].sum(), 1.0, rtol=1e-5)
    assert (principal_rows.groupby(["layer", "head"])["share"].sum() <= 1 + 1e-5).all()
    markdown_texts = (tmp_path / "texts.md").read_text()
    assert "## seg / tiny / principal: principal-faithful vs principal-corrected" in markdown_texts
    assert "| share faithful | share corrected |" in markdown_texts
    accuracy = pd.read_csv(tmp_path / "acc.csv")
    assert accuracy["n_images"].eq(N_SEG).all() and accuracy["baseline_accuracy"].between(0, 1).all()
    for name in ("texts", "acc"):
        assert {"title", "caption", "rule", "command", "inputs"} <= set(json.loads((tmp_path / f"{name}.json")
                                                                                   .read_text()))

    figure = tmp_path / "figures/head_neighbours_seg_tiny.png"
    run("figure-neighbours", "--decomposition", *decomposed["shards"], "--heads", heads_dir / "textspan.csv",
        "--data", world["seg"], "--format", "imagenet-seg", "--queries", 2, "--k", 3, "--out", figure)
    assert figure.is_file() and figure.with_suffix(".pdf").is_file()
    heads = pd.read_csv(heads_dir / "textspan.csv")
    best = heads.groupby(["layer", "head"])["variance_explained"].sum().idxmax()
    assert json.loads(figure.with_suffix(".json").read_text())["head"] == f"L{best[0]}.H{best[1]}"


def test_control_sets_are_distinct_and_exhaustive_for_a_small_pool():
    from clipxai.protocols.waterbirds import control_sets

    pool = [(2, h) for h in range(4)]
    assert control_sets(pool, 4, 20, seed=0) == [pool]  # one possible set: drawn once, not 20 times
    assert len(control_sets(pool, 2, 20, seed=0)) == 6
    big = [(layer, h) for layer in range(4) for h in range(8)]
    sets = control_sets(big, 3, 10, seed=0)
    assert len({tuple(s) for s in sets}) == 10 and sets == control_sets(big, 3, 10, seed=0)
    assert control_sets(pool, 5, 20, seed=0) == []


def test_neighbour_queries_come_from_distinct_classes_first():
    from clipxai.protocols.neighbours import pick_queries

    labels = np.array([0, 0, 0, 1, 1, 2])
    chosen = pick_queries(labels, 3, seed=0)
    assert sorted(labels[chosen].tolist()) == [0, 1, 2]
    assert len(set(pick_queries(labels, 5, seed=0))) == 5
    assert pick_queries(labels, 3, seed=0) == chosen


def test_segment_imagenet_runs_the_faithful_geometry_on_non_square_images(world, decomposed, tmp_path):
    from clipxai.data import imagenet_seg
    from clipxai.models.registry import load_model
    from clipxai.protocols import segmentation

    # the seg world's first images padded to 32x48 (object kept, 16 columns of noise to the right)
    source = imagenet_seg.load(world["seg"])
    noise = np.random.default_rng(4).integers(0, 256, (32, 16, 3), dtype=np.uint8)
    samples = [(np.concatenate([image, noise], axis=1), np.pad(mask, ((0, 0), (0, 16))))
               for image, mask in (source[i] for i in range(4))]
    wide = tmp_path / "wide"
    imagenet_seg.write(wide / "gtsegs_ijcv.mat", samples)
    labels = json.loads((world["seg"] / "gtsegs_ijcv_labels.json").read_text())
    (wide / "gtsegs_ijcv_labels.json").write_text(json.dumps({**labels, "labels": labels["labels"][:4]}))
    source.close()
    run("segment-imagenet", "--data", wide, "--model", world["model"], "--classifier", decomposed["classifier"],
        "--method", "decomposition", "--device", "cpu", "--out", tmp_path / "maps.npz")
    stored = np.load(tmp_path / "maps.npz")
    # each geometry's maps are the decomposition of that geometry's input
    loaded = load_model(str(world["model"]))
    classifier = torch.from_numpy(np.load(decomposed["classifier"]))
    for mode, key in (("faithful", "faithful_image_grid"), ("corrected", "image_grid")):
        images = torch.stack([segmentation.image_input(loaded, mode)(Image.fromarray(image)) for image, _ in samples])
        expected, _ = segmentation.decomposition_maps(loaded, images, classifier)
        np.testing.assert_allclose(stored[key], expected, atol=1e-6)
    assert not np.allclose(stored["faithful_image_grid"], stored["image_grid"])


SEG_METHODS = [("decomposition", "decomposition"), ("random", "random"),
               ("chefer2021", json.dumps({"method": "chefer2021", "params": {"start_layer": -1}})),
               ("chefer2021-all", json.dumps({"method": "chefer2021", "params": {"start_layer": 0}})),
               ("raw-attention", "raw-attention")]


def _segment(world, decomposed, methods, outs, labels=None):
    return main(["segment-imagenet", "--data", str(world["seg"]), "--model", str(world["model"]), "--classifier",
                 str(decomposed["classifier"]), "--shard", "1", "--shards", "2", "--batch-size", "4",
                 "--device", "cpu", *[a for m in methods for a in ("--method", m)],
                 *[a for label in labels or [] for a in ("--label", label)], "--out", *map(str, outs)])


def test_segment_imagenet_with_several_methods_writes_the_maps_each_writes_alone(world, decomposed, tmp_path):
    labels, methods = zip(*SEG_METHODS)
    together = [tmp_path / "together" / f"{label}.npz" for label in labels]
    assert _segment(world, decomposed, methods, together, labels) == 0
    for label, method, path in zip(labels, methods, together):
        alone = tmp_path / "alone" / f"{label}.npz"
        assert _segment(world, decomposed, [method], [alone], [label]) == 0
        with np.load(path) as a, np.load(alone) as b:
            assert a.files == b.files
            for key in a.files:
                assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), (label, key)
    stored = {label: np.load(path) for label, path in zip(labels, together)}
    # the i-th output is the i-th method's, under its label; shard 1 of 2 (3 batches of <= 4 images)
    assert [str(stored[label]["label"]) for label in labels] == list(labels)
    assert str(stored["chefer2021-all"]["method"]) == "chefer2021"
    assert stored["random"]["ids"].tolist() == [str(i) for i in range(1, N_SEG, 2)]
    maps = [stored[label]["image_grid"] for label in labels]
    assert all(not np.array_equal(maps[i], maps[j]) for i in range(len(maps)) for j in range(i))


@pytest.mark.parametrize("methods, outs, labels, expected", [
    (["decomposition", "random"], ["a.npz"], None, "one output per --method"),
    (["decomposition", "random"], ["a.npz", "b.npz"], ["a"], "one label per --method"),
    (["decomposition", "random"], ["a.npz", "a.npz"], None, "a different file for each method"),
    (["decomposition", "no-such-method"], ["a.npz", "b.npz"], None, "no-such-method"),
    # fails while mapping (the tiny model has 2 blocks), after the other methods have mapped the first batch
    (["decomposition", json.dumps({"method": "chefer2021", "params": {"start_layer": 99}})], ["a.npz", "b.npz"],
     None, "start_layer"),
])
def test_segment_imagenet_with_a_bad_method_or_list_writes_no_file(world, decomposed, tmp_path, capsys, methods,
                                                                   outs, labels, expected):
    assert _segment(world, decomposed, methods, [tmp_path / o for o in outs], labels) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("clipxai segment-imagenet: error: ") and expected in errors[0], \
        errors
    assert not list(tmp_path.iterdir())  # not even the good method's maps, nor a temporary file
