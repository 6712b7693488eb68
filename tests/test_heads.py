"""Explaining heads with text: TextSpan, the principal-component variant, mean-ablation, `clipxai explain-heads`."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import torch

from clipxai.errors import InputError
from clipxai.heads import ablation, principal, textspan
from clipxai.seeding import rng

torch.set_num_threads(1)


def unit_pool(n_texts: int, dim: int, seed: int) -> np.ndarray:
    pool = rng(seed, "pool").normal(size=(n_texts, dim))
    return pool / np.linalg.norm(pool, axis=1, keepdims=True)


def head_from_texts(pool: np.ndarray, indices: list[int], spreads: list[float], n_images: int, seed: int):
    """Head outputs [n, D] = a fixed offset + sum_i a_i(image) * text_i with std(a_i) = spreads[i]."""
    draw = rng(seed, "head")
    coefficients = draw.normal(size=(n_images, len(indices))) * np.asarray(spreads)
    offset = draw.normal(size=pool.shape[1])
    return offset + coefficients @ pool[indices]


def test_textspan_recovers_the_texts_a_head_is_built_from():
    pool = unit_pool(60, 64, seed=0)
    known = [41, 7, 23]
    outputs = head_from_texts(pool, known, [4.0, 2.5, 1.5], n_images=400, seed=1)
    chosen, shares, scores, reconstruction = textspan.textspan(outputs, pool, m=3, rank=80)
    assert chosen == known  # in order of the variance they explain
    assert np.all(np.diff(scores) < 0)
    assert shares.sum() == pytest.approx(1.0, abs=1e-9)  # three texts span the head exactly
    np.testing.assert_allclose(reconstruction, outputs, atol=1e-9)
    # Fewer texts than the head uses: the reconstruction misses exactly the rest of the variance.
    chosen2, shares2, _, partial = textspan.textspan(outputs, pool, m=2)
    assert chosen2 == known[:2]
    residual = ((outputs - partial) - (outputs - partial).mean(0)) ** 2
    total = ((outputs - outputs.mean(0)) ** 2).sum()
    assert residual.sum() / total == pytest.approx(1 - shares2.sum(), abs=1e-9)


def test_textspan_projects_texts_onto_the_heads_top_singular_directions():
    """With rank 1 only the direction of the largest (uncentred) singular vector is left in every text: a text
    orthogonal to it can no longer be chosen, whatever its variance."""
    pool = unit_pool(30, 16, seed=2)
    outputs = head_from_texts(pool, [3, 9], [5.0, 1.0], n_images=200, seed=3)
    outputs = outputs - outputs.mean(0) + 50 * pool[9]  # huge mean along text 9 dominates the uncentred SVD
    chosen, *_ = textspan.textspan(outputs, pool, m=1, rank=1)
    full, *_ = textspan.textspan(outputs, pool, m=1, rank=80)
    assert full == [3] and chosen == [9]


def test_explain_heads_covers_last_layers_and_checks_inputs():
    pool = unit_pool(40, 32, seed=4)
    texts = [f"text {i}" for i in range(40)]
    attn = np.zeros((150, 3, 2, 32))
    known = {(1, 0): [5, 6], (1, 1): [7, 8], (2, 0): [9, 10], (2, 1): [11, 12]}
    for seed, ((layer, head), indices) in enumerate(known.items()):
        attn[:, layer, head] = head_from_texts(pool, indices, [3.0, 1.0], 150, seed)
    results = textspan.explain_heads(attn, pool, texts, last_layers=2, m=2)
    assert [(r.layer, r.head) for r in results] == list(known)
    for result in results:
        assert result.texts == [texts[i] for i in known[(result.layer, result.head)]]
        assert [row["rank"] for row in result.rows()] == [0, 1]
    with pytest.raises(InputError):
        textspan.explain_heads(attn, pool, texts[:-1], last_layers=2, m=2)
    with pytest.raises(InputError):
        textspan.explain_heads(attn, pool, texts, last_layers=4, m=2)


def test_kept_rank_faithful_sums_singular_values_corrected_sums_variance():
    s = np.array([4.0, 2.0, 1.0, 1.0, 1.0, 1.0])
    assert principal.kept_rank(s, "faithful", 0.99) == 6
    assert principal.kept_rank(s, "faithful", 0.85) == 5  # cumulative .4 .6 .7 .8 .9
    assert principal.kept_rank(s, "corrected", 0.85) == 3  # squares: .667 .833 .875
    with pytest.raises(InputError):
        principal.kept_rank(s, "other")


def test_principal_reconstruction_error_falls_as_rank_grows():
    draw = rng(5, "principal")
    scales = np.array([8, 6, 4, 3, 2, 1.5, 1, 0.5] + [0.1] * 8)
    outputs = draw.normal(size=(300, 16)) * scales @ np.linalg.qr(draw.normal(size=(16, 16)))[0] + 3.0
    pool = unit_pool(200, 16, seed=6)
    errors = []
    for rank in range(1, 9):
        result = principal.principal(outputs, pool, k=3, rank=rank)
        assert result["rank"] == rank and result["top"].shape == (rank, 3)
        errors.append(np.linalg.norm(outputs - result["reconstruction"]))
    assert np.all(np.diff(errors) < 0), errors
    # With independent top texts the reconstruction is the rank-r PCA reconstruction.
    centred = outputs - outputs.mean(0)
    vh = np.linalg.svd(centred, full_matrices=False)[2][:4]
    pca = centred @ vh.T @ vh + outputs.mean(0)
    np.testing.assert_allclose(principal.principal(outputs, pool, k=1, rank=4)["reconstruction"], pca, atol=1e-8)


def test_principal_names_components_by_top_and_bottom_texts():
    pool = unit_pool(50, 24, seed=7)
    pool[11] = -pool[30]  # a text and its opposite
    outputs = head_from_texts(pool, [30, 2], [6.0, 1.0], n_images=300, seed=8)
    result = principal.principal(outputs, pool, k=4, mode="corrected")
    assert {result["top"][0, 0], result["bottom"][0, 0]} == {11, 30}
    assert np.all(np.diff(result["top_scores"][0]) <= 0) and np.all(np.diff(result["bottom_scores"][0]) >= 0)
    assert result["rank"] == 2  # two directions carry all the variance
    assert result["shares"].sum() == pytest.approx(1.0, abs=1e-9)
    # Scores are coordinates of the *centred* texts (the pool's mean, the modality gap, removed first).
    shifted_pool = pool + 0.7 * pool[2]
    shifted = principal.principal(outputs, shifted_pool, k=4, mode="corrected")
    centred = shifted_pool - shifted_pool.mean(0)
    np.testing.assert_allclose(shifted["top_scores"][:, 0],
                               np.einsum("rd,rd->r", centred[shifted["top"][:, 0]], shifted["components"]),
                               atol=1e-12)


def test_principal_shares_are_singular_values_or_variance_by_mode():
    draw = rng(13, "shares")
    outputs = draw.normal(size=(200, 8)) * np.array([5, 3, 2, 1, 1, 0.5, 0.5, 0.1])
    pool = unit_pool(40, 8, seed=14)
    s = np.linalg.svd(outputs - outputs.mean(0), compute_uv=False)
    faithful = principal.principal(outputs, pool, k=1, mode="faithful", rank=3)
    corrected = principal.principal(outputs, pool, k=1, mode="corrected", rank=3)
    np.testing.assert_allclose(faithful["shares"], s[:3] / s[:3].sum(), rtol=1e-10)  # the kept ones only
    np.testing.assert_allclose(corrected["shares"], s[:3] ** 2 / (s ** 2).sum(), rtol=1e-10)  # all of them
    np.testing.assert_allclose(faithful["strengths"], s[:3], rtol=1e-10)


def test_principal_shares_of_a_hand_worked_truncated_spectrum():
    """Head outputs with singular values 4, 3, 2, 1 (after centring) on orthogonal axes, truncated to rank 2:
    faithful shares 4/7, 3/7 (the original divides by the kept values' sum); corrected 16/30, 9/30 (variance
    over the total variance, so the two shares add up to 25/30 of it)."""
    signs = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], float)  # orthogonal columns
    u = np.vstack([signs, -signs]) / np.sqrt(8)  # 8 images, centred (each column sums to 0), orthonormal columns
    outputs = u @ np.diag([4.0, 3.0, 2.0, 1.0]) + 7.0  # any mean: it is removed first
    pool = np.eye(4)
    faithful = principal.principal(outputs, pool, k=1, mode="faithful", rank=2)
    corrected = principal.principal(outputs, pool, k=1, mode="corrected", rank=2)
    np.testing.assert_allclose(faithful["strengths"], [4.0, 3.0], rtol=1e-12)
    np.testing.assert_allclose(faithful["shares"], [4 / 7, 3 / 7], rtol=1e-12)
    np.testing.assert_allclose(corrected["shares"], [16 / 30, 9 / 30], rtol=1e-12)
    # untruncated (rank 4) the two definitions differ only by squaring
    full = principal.principal(outputs, pool, k=1, mode="faithful", rank=4)
    np.testing.assert_allclose(full["shares"], [0.4, 0.3, 0.2, 0.1], rtol=1e-12)
    # the threshold rule keeps the same rank in this spectrum either way: 99% needs every component
    assert principal.kept_rank(np.array([4.0, 3.0, 2.0, 1.0]), "faithful") == 4
    assert principal.kept_rank(np.array([4.0, 3.0, 2.0, 1.0]), "corrected") == 4


def _decomposition(n=40, layers=3, heads=2, dim=6, classes=4, seed=9):
    draw = rng(seed, "ablation")
    attn = draw.normal(size=(n, layers, heads, dim))
    mlp = draw.normal(size=(n, layers + 1, dim))
    classifier = draw.normal(size=(dim, classes))
    labels = draw.integers(0, classes, size=n)
    return attn, mlp, classifier, labels


def test_ablating_nothing_keeps_the_original_accuracy():
    attn, mlp, classifier, labels = _decomposition()
    embeddings = attn.sum((1, 2)) + mlp.sum(1)
    original = float(((embeddings @ classifier).argmax(1) == labels).mean())
    np.testing.assert_allclose(ablation.ablated_embeddings(attn, mlp), embeddings, atol=1e-12)
    assert ablation.accuracy(ablation.ablated_embeddings(attn, mlp), classifier, labels) == original
    # Replacing every head by itself with no layer mean-ablated changes nothing either.
    itself = {(l, h): attn[:, l, h] for l in range(3) for h in range(2)}
    scores = ablation.replaced_accuracy(attn, mlp, classifier, labels, itself, last_layers=3)
    assert scores == {"baseline_accuracy": original, "mean_ablated_accuracy": original,
                      "reconstructed_accuracy": original}
    perfect = (embeddings @ classifier).argmax(1)
    assert ablation.accuracy(embeddings, classifier, perfect) == 1.0


def test_mean_ablation_replaces_components_by_reference_means():
    attn, mlp, classifier, labels = _decomposition()
    plan = ablation.Ablation.of(3, 2, ablate_heads=[(0, 1)], ablate_layers=[2], ablate_mlps=[0])
    base = attn.sum((1, 2)) + mlp.sum(1)
    expected = (base - attn[:, 0, 1] + attn[:, 0, 1].mean(0) - attn[:, 2].sum(1) + attn[:, 2].mean(0).sum(0)
                - mlp[:, 0] + mlp[:, 0].mean(0))
    np.testing.assert_allclose(ablation.ablated_embeddings(attn, mlp, plan), expected, atol=1e-12)
    np.testing.assert_allclose(ablation.ablated_embeddings(attn, mlp, plan, chunk=7), expected, atol=1e-12)
    ablated_attn, ablated_mlp = ablation.mean_ablate(attn, mlp, plan)
    np.testing.assert_allclose(ablated_attn.sum((1, 2)) + ablated_mlp.sum(1), expected, atol=1e-12)
    # Means from another set: the result moves by exactly the difference of the means.
    ref_attn, ref_mlp, _, _ = _decomposition(n=25, seed=10)
    means = ablation.component_means(ref_attn, ref_mlp)
    shifted = ablation.ablated_embeddings(attn, mlp, plan, means)
    delta = (ref_attn[:, 0, 1].mean(0) - attn[:, 0, 1].mean(0) + ref_attn[:, 2].mean(0).sum(0)
             - attn[:, 2].mean(0).sum(0) + ref_mlp[:, 0].mean(0) - mlp[:, 0].mean(0))
    np.testing.assert_allclose(shifted - expected, np.broadcast_to(delta, shifted.shape), atol=1e-12)
    # A replacement wins over mean-ablation of the same head.
    plan.replacements = {(0, 1): np.full((40, 6), 2.0)}
    replaced = ablation.ablated_embeddings(attn, mlp, plan)
    np.testing.assert_allclose(replaced, expected - attn[:, 0, 1].mean(0) + 2.0, atol=1e-12)
    with pytest.raises(InputError):
        ablation.Ablation.of(3, 2, ablate_heads=[(3, 0)])
    with pytest.raises(InputError):
        ablation.accuracy(expected, classifier, labels + 4)


def _run_explain(tmp_path, *extra):
    from clipxai.commands import explain_heads as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return command.run(parser.parse_args(list(extra)))


def _synthetic_inputs(tmp_path):
    pool = unit_pool(30, 16, seed=11)
    n, layers, heads = 120, 3, 2
    attn = np.zeros((n, layers, heads, 16), dtype=np.float32)
    for l in range(layers):
        for h in range(heads):
            attn[:, l, h] = head_from_texts(pool, [l * 4 + h, l * 4 + h + 2], [2.0, 1.0], n, seed=l * 10 + h)
    mlp = rng(12, "mlp").normal(size=(n, layers + 1, 16)).astype(np.float32)
    classifier = pool[:5].T.astype(np.float32)
    labels = ((attn.sum((1, 2)) + mlp.sum(1)) @ classifier).argmax(1)
    np.savez(tmp_path / "d.npz", attn=attn, mlp=mlp, labels=labels)
    (tmp_path / "texts.txt").write_text("\n".join(f"description {i}" for i in range(30)) + "\n")
    np.save(tmp_path / "text_emb.npy", pool.astype(np.float32))
    np.save(tmp_path / "classifier.npy", classifier)
    common = ["--decomposition", str(tmp_path / "d.npz"), "--texts", str(tmp_path / "texts.txt"),
              "--text-embeddings", str(tmp_path / "text_emb.npy"), "--classifier", str(tmp_path / "classifier.npy"),
              "--layers", "2", "--m", "2"]
    return common


def test_explain_heads_command_textspan_and_principal(tmp_path):
    common = _synthetic_inputs(tmp_path)
    out = tmp_path / "heads.csv"
    assert _run_explain(tmp_path, *common, "--algorithm", "textspan", "--out", str(out)) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["layer", "head", "rank", "text", "variance_explained", "side", "position",
                                   "score"]
    assert len(table) == 2 * 2 * 2 and sorted(table.layer.unique()) == [1, 2]
    head = table[(table["layer"] == 2) & (table["head"] == 1)]
    assert head.text.tolist() == ["description 9", "description 11"]
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["baseline_accuracy"] == 1.0  # labels are the model's own predictions
    assert 0.0 <= summary["mean_ablated_accuracy"] <= 1.0
    assert summary["reconstructed_accuracy"] == summary["mean_ablated_accuracy"]  # exact reconstructions
    first = out.read_bytes(), out.with_suffix(".json").read_bytes()
    assert _run_explain(tmp_path, *common, "--algorithm", "textspan", "--out", str(out)) == 0
    assert (out.read_bytes(), out.with_suffix(".json").read_bytes()) == first  # byte-identical reruns

    out_pc = tmp_path / "pc.csv"
    assert _run_explain(tmp_path, *common, "--algorithm", "principal", "--mode", "corrected", "--out",
                        str(out_pc)) == 0
    table = pd.read_csv(out_pc)
    summary = json.loads(out_pc.with_suffix(".json").read_text())
    assert summary["mode"] == "corrected" and summary["mean_components_kept"] == 2.0
    assert len(table) == 4 * 2 * 2 * 2  # 4 heads x 2 components x (top 2 + bottom 2)
    assert set(table.side) == {"top", "bottom"}


def test_explain_heads_command_rejects_bad_input(tmp_path):
    common = _synthetic_inputs(tmp_path)
    np.save(tmp_path / "wrong.npy", np.zeros((30, 5), dtype=np.float32))
    bad = common.copy()
    bad[bad.index("--text-embeddings") + 1] = str(tmp_path / "wrong.npy")
    with pytest.raises(InputError):
        _run_explain(tmp_path, *bad, "--out", str(tmp_path / "x.csv"))
    no_texts = [a for a in common if a not in ("--text-embeddings", str(tmp_path / "text_emb.npy"))]
    with pytest.raises(InputError, match="text-embeddings"):
        _run_explain(tmp_path, *no_texts, "--out", str(tmp_path / "x.csv"))
    with pytest.raises(InputError, match="decomposition shard directory"):
        _run_explain(tmp_path, "--decomposition", str(tmp_path / "missing"), *common[2:], "--out",
                     str(tmp_path / "x.csv"))
    assert not (tmp_path / "x.csv").exists()


def test_nearest_neighbours_in_a_heads_subspace():
    draw = rng(15, "nns")
    basis = np.linalg.qr(draw.normal(size=(12, 12)))[0].T  # orthonormal rows
    clusters = np.repeat(np.arange(4), 10)
    centres = draw.normal(size=(4, 2)) * 5
    signal = centres[clusters] + draw.normal(size=(40, 2)) * 0.1
    nuisance = draw.normal(size=(40, 1)) * 50  # large variance outside the head's subspace
    outputs = signal @ basis[:2] + nuisance @ basis[2:3] + 1.0
    indices, similarity = principal.nearest_neighbours(outputs, [0, 15], k=5, components=basis[:2])
    assert indices.shape == (2, 5)
    assert 0 not in indices[0] and 15 not in indices[1]  # a query is not its own neighbour
    assert np.all(clusters[indices[0]] == 0) and np.all(clusters[indices[1]] == 1)
    assert np.all(np.diff(similarity, axis=1) <= 0)
    # In the whole space the nuisance direction dominates and the clusters are lost.
    whole, _ = principal.nearest_neighbours(outputs, [0], k=5)
    assert not np.all(clusters[whole[0]] == 0)
    # Vectors as queries: the image's own row is then its nearest neighbour.
    own, sims = principal.nearest_neighbours(outputs, outputs[[3]], k=1, components=basis[:2])
    assert own[0, 0] == 3 and sims[0, 0] == pytest.approx(1.0)
