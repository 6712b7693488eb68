"""Similarity studies: sampling, image targets, saliency of each similarity, scoring and the shuffled control."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from clipxai import attribution, cli
from clipxai.data import shapes
from clipxai.models.registry import load_model
from clipxai.protocols import similarity as sim

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes_imagenet")
    shapes.write_imagenet(root, shapes.ShapesConfig(seed=1, image_size=32), n_images=60, progress=False)
    return root


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny.json"
    path.write_text(json.dumps({"embed_dim": 32, "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64,
                                                                 "layers": 2, "head_width": 32},
                                "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2,
                                             "layers": 2}}))
    return str(path)


@pytest.fixture(scope="module")
def model(model_path):
    torch.manual_seed(0)
    return load_model(model_path)


def test_shapes_study_is_seeded_and_image_targets_share_colour_or_shape(world):
    study = sim.build_study("shapes", {"kind": "shapes", "data": str(world)}, 8, seed=0)
    again = sim.build_study("shapes", {"kind": "shapes", "data": str(world)}, 8, seed=0)
    other = sim.build_study("shapes", {"kind": "shapes", "data": str(world)}, 8, seed=1)
    assert study.ids == again.ids and study.ids != other.ids and len(study.ids) == 8
    colour, shape, image = study.domains
    assert colour.targets == list(shapes.COLOURS) and shape.targets == list(shapes.SHAPES)
    names = (world / "classnames.txt").read_text().split("\n")
    folder_name = {n.replace(" ", "_"): n for n in names if n}
    for i, (same_colour, same_shape) in enumerate(image.target_images):
        c, s = folder_name[Path(study.image_paths[i]).parent.name].split(" ")
        assert (c, s) == (colour.targets[colour.labels[i]], shape.targets[shape.labels[i]])
        c1, s1 = folder_name[same_colour.parent.name].split(" ")
        c2, s2 = folder_name[same_shape.parent.name].split(" ")
        assert c1 == c and s1 != s and s2 == s and c2 != c


def test_run_study_similarities_and_a_saliency_map_per_pair(world, model):
    study = sim.build_study("shapes", {"kind": "shapes", "data": str(world), "template": "a {}"}, 3, seed=0)
    method = attribution.get("rollout-last-grad")
    out = sim.run_study(model, study, method, batch_size=4)
    sims, saliency = out["colour"]
    assert sims.shape == (3, 6) and saliency.shape == (3, 6, 4, 4) and np.isfinite(saliency).all()
    images = sim._load(model, study.image_paths)
    with torch.no_grad():
        text = F.normalize(model.model.encode_text(model.tokenizer([f"a {c}" for c in shapes.COLOURS])), dim=-1)
        expected = F.normalize(model.model.encode_image(images), dim=-1) @ text.T
    np.testing.assert_allclose(sims, expected.numpy(), atol=1e-5)
    # each map is the method's map of that (image, word) pair
    direct = method.attribute(model, images[:1], model.tokenizer(["a green"])).image[0].numpy()
    np.testing.assert_allclose(saliency[0, list(shapes.COLOURS).index("green")], direct, rtol=1e-4, atol=1e-6)
    img_sims, img_maps = out["image"]
    assert img_sims.shape == (3, 2) and np.isfinite(img_maps).all()


def test_image_target_swaps_the_objective_and_restores_the_model(world, model):
    study = sim.build_study("shapes", {"kind": "shapes", "data": str(world)}, 2, seed=0)
    images = sim._load(model, study.image_paths)
    target = torch.randn(2, 32)
    empty = model.tokenizer([""]).expand(2, -1).clone()
    with sim.image_target(model, target):
        torch.testing.assert_close(model.model.encode_text(empty), target)
        swapped = attribution.get("chefer2021").attribute(model, images, empty).image
    plain = attribution.get("chefer2021").attribute(model, images, empty).image
    assert "encode_text" not in vars(model.model)
    assert not torch.allclose(swapped, plain)


def test_topk_hits_ties_and_chance():
    from clipxai.protocols.similarity import chance_topk

    sims = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.1], [0.4, 0.4, 0.0]])
    labels = np.array([0, 0, 1])
    assert sim.topk_hits(sims, labels, 1).tolist() == [1.0, 0.0, 0.0]   # a tie goes to the first target
    assert sim.topk_hits(sims, labels, 2).tolist() == [1.0, 1.0, 1.0]
    dist = np.array([[0.5, 0.5, 0.0], [0.2, 0.2, 0.6], [0.1, 0.8, 0.1]])
    assert sim.topk_hits(sims, labels, 1, dist).tolist() == [1.0, 0.0, 0.0]
    assert chance_topk(3, 1) == pytest.approx(1 / 3)
    assert chance_topk(9, 3) == pytest.approx(3 / 9)
    assert chance_topk(4, 1, [2, 1]) == pytest.approx((0.5 + 0.25) / 2)
    rho = sim.rank_correlations(np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]]), np.array([[0.1, 0.3, 0.6],
                                                                                       [0.2, 0.3, 0.5]]))
    assert rho[0] == pytest.approx(1.0) and np.isnan(rho[1])


def test_shuffled_labels_fall_to_chance_where_annotated_ones_are_perfect():
    from clipxai.protocols.similarity import score_result as score

    n, k = 600, 6
    labels = np.arange(n) % k
    sims = np.eye(k)[labels] + 0.01 * np.random.default_rng(0).random((n, k))
    rows = score({"study": np.array("s"), "method": np.array("m"), "domains": np.array(["colour"]),
                  "colour__sims": sims, "colour__labels": labels, "colour__targets": np.array(list("abcdef"))},
                 "toy", top_k=2, seed=0, n_resamples=200)
    table = pd.DataFrame(rows).set_index(["metric", "labels"])
    assert table.loc[("top-1", "annotated"), "mean"] == 1.0
    shuffled = table.loc[("top-1", "shuffled")]
    # a random permutation of the labels: the perfect ranking now hits about one in k (sd ~0.015 at n = 600)
    assert abs(shuffled["mean"] - 1 / k) < 0.05 and shuffled["chance"] == pytest.approx(1 / k)
    assert shuffled["hi"] < 0.3 and shuffled["lo"] < shuffled["mean"] < shuffled["hi"]
    assert table.loc[("top-2", "shuffled"), "chance"] == pytest.approx(2 / k)


def test_verbs_write_the_study_table_claims_and_figure(world, model_path, tmp_path):
    out = tmp_path / "results" / "similarity" / "shapes" / "tiny.npz"
    spec = json.dumps({"kind": "shapes", "data": str(world)})
    assert cli.main(["similarity", "--study", "shapes", "--spec", spec, "--model", model_path, "--method",
                     "rollout-last-grad", "--n-images", "4", "--batch-size", "8", "--out", str(out)]) == 0
    table = tmp_path / "similarity.csv"
    claims = tmp_path / "similarity_claims.csv"
    assert cli.main(["table-similarity", "--results", str(out), "--bootstrap", "50", "--reported",
                     str(REPO / "src/clipxai/report/reported.yaml"), "--out", str(table),
                     "--out-claims", str(claims)]) == 0
    frame = pd.read_csv(table)
    assert set(frame["domain"]) == {"colour", "shape", "image"}
    assert set(frame["labels"]) == {"annotated", "shuffled"} and (frame["n_images"] == 4).all()
    quoted = pd.read_csv(claims)
    assert len(quoted) >= 2 and quoted["kind"].str.startswith("qualitative").all()
    assert json.loads(table.with_suffix(".json").read_text())["section"] == "similarity"
    figure = tmp_path / "similarity_shapes_tiny.png"
    assert cli.main(["figure-similarity", "--result", str(out), "--n", "2", "--out", str(figure)]) == 0
    assert figure.stat().st_size > 0 and figure.with_suffix(".pdf").is_file()


def test_missing_artemis_data_is_one_line_exit_2(tmp_path, model_path, capsys):
    spec = json.dumps({"kind": "artemis", "csv": str(tmp_path / "artemis.csv"), "images": str(tmp_path)})
    code = cli.main(["similarity", "--study", "art", "--spec", spec, "--model", model_path, "--method", "random",
                     "--out", str(tmp_path / "x.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "artemis.csv" in err[-1] and "licence-bound" in err[-1]
    assert not (tmp_path / "x.npz").exists()


def test_shuffled_control_of_a_constant_label_draws_labels_at_random():
    from clipxai.protocols.similarity import score_result as score

    n = 400
    sims = np.tile([0.9, 0.1], (n, 1))   # always prefers target 0, the annotated one
    rows = score({"study": np.array("s"), "method": np.array("m"), "domains": np.array(["image"]),
                  "image__sims": sims, "image__labels": np.zeros(n, dtype=np.int64),
                  "image__targets": np.array(["same colour", "same shape"])}, "toy", top_k=2, seed=0, n_resamples=100)
    table = pd.DataFrame(rows).set_index(["metric", "labels"])
    assert table.loc[("top-1", "annotated"), "mean"] == 1.0
    assert abs(table.loc[("top-1", "shuffled"), "mean"] - 0.5) < 0.08
    assert ("top-2", "annotated") not in table.index   # k >= number of targets: no top-k row


def test_table_similarity_quotes_the_packaged_reported_yaml_by_default(tmp_path):
    from clipxai.report.reported import REPORTED

    result = tmp_path / "shapes" / "toy.npz"
    result.parent.mkdir()
    np.savez(result, ids=np.array(["a", "b"]), study=np.array("shapes"), method=np.array("m"),
             domains=np.array(["colour"]), colour__targets=np.array(["red", "blue"]),
             colour__labels=np.array([0, 1]), colour__sims=np.array([[0.9, 0.1], [0.2, 0.8]]))
    claims = tmp_path / "claims.csv"
    base = ["table-similarity", "--results", str(result), "--bootstrap", "20", "--out", str(tmp_path / "t.csv"),
            "--out-claims", str(claims)]
    assert cli.main(base) == 0
    assert json.loads(claims.with_suffix(".json").read_text())["inputs"] == [str(REPORTED)]
    packaged = claims.read_bytes()
    assert len(pd.read_csv(claims)) >= 2
    own = tmp_path / "own.yaml"  # an explicit --reported still wins
    own.write_text("qualitative:\n  - {source: s, claim: c, where: w, measured_here: m}\n")
    assert cli.main(base + ["--reported", str(own)]) == 0
    assert pd.read_csv(claims)["claim"].tolist() == ["c"] and claims.read_bytes() != packaged
