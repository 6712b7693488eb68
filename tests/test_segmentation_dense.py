"""Dense segmentation (CLIPpy protocol): the 60 -> 21 class mapping, prompts, upsampling + argmax, faithful vs
corrected label geometry, an end-to-end oracle run, and the segment-voc / zeroshot verbs with their tables."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torchvision import transforms as T

from clipxai.cli import main
from clipxai.data import imagenet, voc
from clipxai.models.registry import LoadedModel
from clipxai.segmentation import dense

torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------ classes and prompts


def test_sixty_prompt_classes_map_onto_the_21_voc_classes():
    classes = dense.VOC_EXTENDED_CLASSES
    assert len(classes) == 60 and len(set(classes)) == 60 and dense.N_VOC_CLASSES == 21
    # the first 21 are VOC's label classes in label order (the replication's wording for three of them)
    renamed = {"table": "diningtable", "potted plant": "pottedplant", "television monitor": "tvmonitor"}
    assert [renamed.get(c, c) for c in classes[:21]] == list(voc.VOC_CLASSES)
    assert {"sky", "wall", "water", "tree", "road", "wood"} <= set(classes[21:])
    pred = np.array([[0, 5, 20], [21, 40, 59]], dtype=np.int64)
    expected = np.array([[0, 5, 20], [0, 0, 0]])
    np.testing.assert_array_equal(dense.collapse_to_label_classes(pred, 21), expected)
    np.testing.assert_array_equal(dense.collapse_to_label_classes(torch.from_numpy(pred), 21).numpy(), expected)


def test_prompts_follow_the_replication():
    assert dense.clippy_prompt("aeroplane") == "a photo of an aeroplane"
    assert dense.clippy_prompt("Potted Plant") == "a photo of a potted plant"
    assert dense.clippy_prompt("umbrella") == "a photo of an umbrella"  # first letter decides, not the sound
    assert dense.clippy_prompt("hour") == "a photo of a hour"
    assert dense.class_prompts(["circle", "star"], "a {}") == ["a circle", "a star"]
    with pytest.raises(Exception):
        dense.class_prompts(["circle"], "a circle")


def test_prediction_upsamples_patch_scores_and_collapses_extra_classes():
    # 2x2 grid; patch k is class k's direction (class 3 is an extra prompt class beyond 3 label classes)
    text = torch.eye(4)
    features = torch.eye(4).unsqueeze(0)  # [1, 4 patches, D=4]
    pred = dense.predict(features, (2, 2), text, (8, 8), n_label_classes=3)
    assert pred.shape == (1, 8, 8) and pred.dtype == torch.int64
    np.testing.assert_array_equal(pred[0, :4, :4], 0)
    np.testing.assert_array_equal(pred[0, :4, 4:], 1)
    np.testing.assert_array_equal(pred[0, 4:, :4], 2)
    np.testing.assert_array_equal(pred[0, 4:, 4:], 0)  # class 3 -> background
    # upsampling the similarities equals the replication's upsampling of the normalised features
    rng = torch.Generator().manual_seed(0)
    feats = F.normalize(torch.randn(2, 9, 5, generator=rng), dim=-1)
    words = F.normalize(torch.randn(6, 5, generator=rng), dim=-1)
    maps = dense.similarity_maps(feats, (3, 3), words, (12, 12))
    grid = feats.reshape(2, 3, 3, 5).permute(0, 3, 1, 2)
    upsampled = F.interpolate(grid, scale_factor=4, mode="bilinear")
    torch.testing.assert_close(maps, torch.einsum("bdhw,cd->bchw", upsampled, words), atol=1e-6, rtol=1e-5)


# -------------------------------------------------------------------------------------------------- geometry


def _quarter_label(height: int = 32, width: int = 64) -> np.ndarray:
    """Class 1 in the left quarter, class 2 elsewhere, a void (255) top row."""
    label = np.full((height, width), 2, dtype=np.uint8)
    label[:, : width // 4] = 1
    label[0] = 255
    return label


def test_faithful_squashes_the_label_while_corrected_follows_the_image_crop():
    preprocess = T.Compose([T.Resize(16, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(16),
                            T.ToTensor()])
    label = _quarter_label()
    faithful = dense.align_label(label, "faithful", preprocess, 16)
    corrected = dense.align_label(label, "corrected", preprocess, 16)
    assert faithful.shape == corrected.shape == (16, 16)
    np.testing.assert_array_equal(faithful[1:, :4], 1)  # the left quarter survives the squash
    assert 1 not in corrected  # the centre crop of the image never shows the left quarter
    # corrected labels follow the same pixels as the image: a picture of the label through the model's transform
    picture = np.where(label[..., None] == 1, [255, 0, 0], [0, 255, 0]).astype(np.uint8)
    from PIL import Image

    seen = preprocess(Image.fromarray(picture)).numpy()
    red = seen[0] > seen[1]
    np.testing.assert_array_equal(red[1:], corrected[1:] == 1)
    with pytest.raises(ValueError):
        dense.align_label(label, "sideways", preprocess, 16)


class _ColourTrunk(torch.nn.Module):
    """A stand-in timm trunk: each 8x8 patch's token is its mean colour (a class token in front)."""

    num_prefix_tokens = 1

    def forward_features(self, images):
        patches = F.avg_pool2d(images, 8).flatten(2).transpose(1, 2)
        return torch.cat([torch.zeros_like(patches[:, :1]), patches], dim=1)


class _ColourModel(torch.nn.Module):
    """Image tower = mean colours; text "a {red|green|blue}" -> that colour's direction."""

    directions = {"blue": (0.0, 0.0, 1.0), "red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0)}

    def __init__(self):
        super().__init__()
        self.visual = torch.nn.Module()
        self.visual.trunk = _ColourTrunk()
        self.visual.head = torch.nn.Sequential()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def encode_image(self, images):
        return images.mean(dim=(2, 3))

    def encode_text(self, tokens):
        return tokens.float()


def colour_model(size: int = 32) -> LoadedModel:
    names = list(_ColourModel.directions)

    def tokenizer(texts):
        return torch.tensor([_ColourModel.directions[t.split()[-1]] for t in texts])

    preprocess = T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor()])
    assert names == ["blue", "red", "green"]
    return LoadedModel(model=_ColourModel().eval(), preprocess=preprocess, tokenizer=tokenizer, name="colour",
                       image_size=size, grid=(size // 8, size // 8), context_length=1, mean=(0.0, 0.0, 0.0),
                       std=(1.0, 1.0, 1.0), device=torch.device("cpu"))


@pytest.fixture(scope="module")
def colour_voc(tmp_path_factory):
    """Three 32x64 images coloured by their label (background blue, class 1 red, class 2 green)."""
    root = tmp_path_factory.mktemp("colour_voc")
    colours = np.array([[0, 0, 255], [255, 0, 0], [0, 255, 0]], dtype=np.uint8)
    samples = []
    for index in range(3):
        label = _quarter_label()
        rgb = colours[np.where(label == 255, 2, label)]
        samples.append((f"img{index}", rgb, label))
    voc.write(root, {"val": samples, "train": samples[:1]}, ["blue", "red", "green"])
    return root


def test_oracle_model_scores_perfectly_only_when_label_and_image_are_aligned(colour_voc):
    dataset = voc.load(colour_voc, "val")
    result = dense.evaluate(colour_model(), dataset, dataset.class_names, prompt="a {}", batch_size=2,
                            n_examples=1, progress=False)
    corrected, faithful = result.accumulators["corrected"], result.accumulators["faithful"]
    assert result.n_images == 3 and result.prompts == ["a blue", "a red", "a green"]
    # corrected: the crop shows only green; every scored pixel right; void top row ignored
    assert corrected.confusion.sum() == 3 * 31 * 32 and corrected.confusion[2, 2] == 3 * 31 * 32
    assert corrected.result("exclude")["miou"] == pytest.approx(1.0)
    assert corrected.result("zero")["miou"] == pytest.approx(1 / 3)  # blue and red absent count as 0
    # faithful: the squashed label still has the red quarter the model never saw
    assert faithful.confusion[1, 2] == 3 * 31 * 8
    assert faithful.result("exclude")["miou"] == pytest.approx(0.75 / 2)
    example = result.examples[0]
    assert example.image.shape == (32, 32, 3) and example.prediction.shape == (32, 32)
    assert example.image_id == "img0" and (example.prediction == 2).all()


# ------------------------------------------------------------------------------------------ verbs and tables


def test_segment_voc_verb_and_table(colour_voc, tmp_path, monkeypatch, repo):
    from clipxai.commands import segment_voc

    monkeypatch.setattr(segment_voc, "load_for_args", lambda args: colour_model())
    out = tmp_path / "out"
    args = ["segment-voc", "--data", str(colour_voc), "--classes", "dataset", "--prompt", "a {}", "--model", "colour",
            "--dataset-label", "colours", "--model-label", "oracle", "--no-progress",
            "--out", str(out / "pc.csv"), "--summary", str(out / "sum.csv"), "--confusion", str(out / "c.npz"),
            "--figure", str(out / "fig.png"), "--examples", "2"]
    assert main(args) == 0
    summary = pd.read_csv(out / "sum.csv")
    assert len(summary) == 4 and set(summary["alignment"]) == {"faithful", "corrected"}
    row = summary[(summary.alignment == "corrected") & (summary.absent == "exclude")].iloc[0]
    assert row.miou == pytest.approx(1.0) and row.n_images == 3 and row.model == "oracle"
    per_class = pd.read_csv(out / "pc.csv")
    assert len(per_class) == 4 * 3
    caption = json.loads((out / "fig.json").read_text())
    assert {"title", "caption", "rule", "command", "inputs"} <= set(caption)
    assert (out / "fig.png").stat().st_size > 1000 and (out / "fig.pdf").is_file()
    confusion = np.load(out / "c.npz")
    assert confusion["confusion_corrected"].sum() == 3 * 31 * 32
    np.testing.assert_array_equal(confusion["per_image_corrected"].sum(axis=0), confusion["confusion_corrected"])
    faithful_zero = summary[(summary.alignment == "faithful") & (summary.absent == "zero")].iloc[0]
    assert faithful_zero.miou_lo <= faithful_zero.miou <= faithful_zero.miou_hi
    # a second run gives byte-identical tables
    first = (out / "sum.csv").read_bytes()
    assert main(args) == 0 and (out / "sum.csv").read_bytes() == first

    tables = tmp_path / "tables"
    table_args = ["table-segmentation", "--summaries", str(out / "sum.csv"), "--per-class", str(out / "pc.csv"),
                  "--reported", str(repo / "src/clipxai/report/reported.yaml"),
                  "--published-miou", "colours:oracle=clippy.voc_miou", "--published-ji", "colours:oracle=clippy.voc_ji",
                  "--out-csv", str(tables / "seg.csv"), "--out-classes", f"colours={tables / 'seg_colours.csv'}",
                  "--out-md", str(tables / "seg.md")]
    assert main(table_args) == 0
    table = pd.read_csv(tables / "seg.csv", keep_default_na=False)
    assert len(table) == 5  # 2 alignments x 2 absent rules, plus the published-only JI row
    reported = table[table.reported != ""]
    assert sorted(reported.reported) == ["clippy.voc_ji", "clippy.voc_miou"]
    miou_row = reported[reported.metric == "mIoU"].iloc[0]
    assert (miou_row.alignment, miou_row.absent) == ("faithful", "zero")  # the replication's protocol only
    assert reported[reported.metric == "JI"].iloc[0].value == ""  # JI: published only, never a value
    assert json.loads((tables / "seg.json").read_text())["command"] == "clipxai table-segmentation"
    classes = pd.read_csv(tables / "seg_colours.csv")
    assert list(classes.columns[-3:]) == ["blue", "red", "green"] and len(classes) == 4
    assert (tables / "seg_colours.json").is_file() and "## colours" in (tables / "seg.md").read_text()
    # an id that reported.yaml does not know is refused
    assert main(table_args[:7] + ["--published-miou", "colours:oracle=clippy.nonexistent"] + table_args[9:]) == 2


def test_segment_voc_refuses_voc_extended_classes_on_another_label_set(colour_voc, tmp_path):
    code = main(["segment-voc", "--data", str(colour_voc), "--model", "ViT-B-32", "--out", str(tmp_path / "a.csv"),
                 "--summary", str(tmp_path / "b.csv")])
    assert code == 2 and not (tmp_path / "a.csv").exists()


@pytest.fixture(scope="module")
def colour_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("colour_folders")
    colours = {"blue": (0, 0, 255), "green": (0, 255, 0), "red": (255, 0, 0)}
    samples = [(name, f"{name}_{i}.JPEG", np.full((20, 30, 3), rgb, dtype=np.uint8))
               for name, rgb in colours.items() for i in range(2)]
    imagenet.write_class_folders(root, samples, {n: n for n in colours})
    return root


def test_zeroshot_verb_labels_line_up_with_class_names(colour_folders, tmp_path, monkeypatch, repo):
    from clipxai.commands import zeroshot

    monkeypatch.setattr(zeroshot, "load_for_args", lambda args: colour_model())
    out = tmp_path / "zs.csv"
    base = ["zeroshot", "--data", str(colour_folders), "--classnames", "dataset", "--templates", "given",
            "--template", "a {}", "--model", "colour", "--model-label", "oracle", "--dataset-label", "colours",
            "--no-progress", "--out", str(out)]
    assert main(base + ["--verify", "--expect-images", "6", "--expect-classes", "3", "--no-require-wnids",
                        "--predictions", str(tmp_path / "p.npz")]) == 0
    row = pd.read_csv(out).iloc[0]
    assert row.top1 == 1.0 and row.n_images == 6 and row.n_classes == 3 and row.complete
    predictions = np.load(tmp_path / "p.npz")
    np.testing.assert_array_equal(predictions["top5"][:, 0], predictions["label"])
    # an incomplete copy is refused before any scoring
    assert main(base + ["--verify", "--expect-images", "7", "--expect-classes", "3", "--no-require-wnids"]) == 2

    assert row.top1_lo <= 1.0 <= row.top1_hi
    table = tmp_path / "zs_table.csv"
    assert main(["table-zeroshot", "--results", str(out), "--reported", str(repo / "src/clipxai/report/reported.yaml"),
                 "--published", "colours:oracle=clippy.imagenet_zeroshot_top1", "--out-csv", str(table),
                 "--out-md", str(tmp_path / "zs.md")]) == 0
    rows = pd.read_csv(table, keep_default_na=False)
    assert list(rows.metric) == ["top1", "top5"] and rows.value.tolist() == [1.0, 1.0]
    assert rows.reported.tolist() == ["clippy.imagenet_zeroshot_top1", ""]
    assert json.loads(table.with_suffix(".json").read_text())["rule"] == "table_zeroshot"


def test_zeroshot_subset_copy_and_fewer_templates_are_partial(colour_folders, tmp_path, monkeypatch):
    """A copy holding fewer images than the complete split, or a classifier of fewer templates than the set's, is
    scored but marked partial (the report then computes no difference from a published number)."""
    from clipxai.commands import zeroshot

    monkeypatch.setattr(zeroshot, "load_for_args", lambda args: colour_model())
    base = ["zeroshot", "--data", str(colour_folders), "--classnames", "dataset", "--templates", "given",
            "--template", "a {}", "--template", "a photo of a {}", "--model", "colour", "--no-progress",
            "--verify", "--expect-images", "6", "--expect-classes", "3", "--no-require-wnids"]
    rows = {}
    for name, extra in (("full", []), ("subset", ["--split-images", "60"]), ("one-template", ["--max-templates", "1"])):
        assert main(base + extra + ["--out", str(tmp_path / f"{name}.csv")]) == 0
        rows[name] = pd.read_csv(tmp_path / f"{name}.csv").iloc[0]
    assert rows["full"].complete and rows["full"].n_split_images == 6 and rows["full"].n_templates == 2
    assert not rows["subset"].complete and rows["subset"].n_split_images == 60
    assert not rows["one-template"].complete and rows["one-template"].n_templates == 1
    assert rows["one-template"].templates == "a {}"


def test_real_tiny_vit_runs_end_to_end(colour_voc):
    from clipxai.models.toy import tiny_config

    import open_clip

    cfg = tiny_config(image_size=32, patch_size=8, width=32, layers=1, head_width=16, text_width=32, text_layers=1,
                      text_heads=2, embed_dim=16)
    open_clip.factory._MODEL_CONFIGS["segtest-tiny-vit"] = cfg
    from clipxai.models.registry import load_model

    model = load_model("segtest-tiny-vit")
    dataset = voc.load(colour_voc, "val")
    result = dense.evaluate(model, dataset, dataset.class_names, prompt="a {}", batch_size=3, progress=False)
    features = dense.patch_features(model, torch.zeros(1, 3, 32, 32))
    assert features.shape == (1, 16, 16)
    assert result.accumulators["corrected"].confusion.sum() == 3 * 31 * 32


def test_max_images_makes_a_partial_table_that_the_report_does_not_compare(colour_voc, tmp_path, monkeypatch, repo):
    from clipxai.commands import segment_voc

    monkeypatch.setattr(segment_voc, "load_for_args", lambda args: colour_model())
    summaries = {}
    # "copy": every image of its own list, but the real split (--split-images, VOC2012 val's 1449) is larger
    for name, cap in (("full", []), ("partial", ["--max-images", "2"]), ("copy", ["--split-images", "1449"])):
        out = tmp_path / name
        assert main(["segment-voc", "--data", str(colour_voc), "--classes", "dataset", "--prompt", "a {}",
                     "--model", "colour", "--dataset-label", "colours", "--model-label", name, "--no-progress",
                     "--bootstrap", "50", *cap, "--out", str(out / "pc.csv"), "--summary", str(out / "sum.csv")]) == 0
        summaries[name] = pd.read_csv(out / "sum.csv")
    assert (summaries["full"].n_images == 3).all() and (summaries["full"].n_split_images == 3).all()
    assert (summaries["partial"].n_images == 2).all() and (summaries["partial"].n_split_images == 3).all()
    assert (summaries["copy"].n_images == 3).all() and (summaries["copy"].n_split_images == 1449).all()

    tables = tmp_path / "tables"
    assert main(["table-segmentation", "--summaries", *(str(tmp_path / n / "sum.csv") for n in summaries),
                 "--per-class", *(str(tmp_path / n / "pc.csv") for n in summaries),
                 "--reported", str(repo / "src/clipxai/report/reported.yaml"),
                 "--published-miou", "colours:full=clippy.voc_miou",
                 "--published-miou", "colours:partial=clippy.voc_miou",
                 "--published-miou", "colours:copy=clippy.voc_miou",
                 "--out-csv", str(tables / "seg.csv"), "--out-classes", f"colours={tables / 'seg_colours.csv'}",
                 "--out-md", str(tables / "seg.md")]) == 0
    table = pd.read_csv(tables / "seg.csv", keep_default_na=False)
    assert dict(zip(table.model, table.complete)) == {"full": True, "partial": False, "copy": False}
    assert set(zip(table.model, table.n_images, table.n_split_images)) == {("full", 3, 3), ("partial", 2, 3),
                                                                           ("copy", 3, 1449)}
    assert json.loads((tables / "seg.json").read_text())["complete"] is False
    md = (tables / "seg.md").read_text()
    assert md.count("2 of 3 entries") == 1 and md.count("3 of 1449 entries") == 1
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--config-json", json.dumps({"datasets": {}, "models": {}}),
                 "--reported", str(repo / "src/clipxai/report/reported.yaml"), "--tables", str(tables / "seg.csv"),
                 "--template-dir", str(repo / "src/clipxai/report/templates"),
                 "--out-dir", str(tmp_path / "report")]) == 0
    html = (tmp_path / "report" / "index.html").read_text()
    published = next(r for r in table.itertuples() if r.model == "full" and r.reported)
    rows = {m: next(r for r in re.findall(r"<tr>(.*?)</tr>", html, re.S) if f">{m}<" in r and "mIoU" in r
                    and "faithful" in r and ">zero<" in r) for m in ("full", "partial", "copy")}
    assert "n/a" not in rows["full"] and re.search(r"<td>[+-]\d\.\d{4}</td>", rows["full"])  # its difference
    assert "n/a: partial run: 2 of 3 entries" in rows["partial"]
    assert not re.search(r"<td>[+-]\d\.\d{4}</td>", rows["partial"])
    assert "n/a: partial run: 3 of 1449 entries" in rows["copy"]
    assert not re.search(r"<td>[+-]\d\.\d{4}</td>", rows["copy"])
    assert "Partial run: 2 of 3 entries, 3 of 1449 entries; &Delta; is not computed for those rows." in \
        " ".join(html.split())
    assert published.reported == "clippy.voc_miou"


def test_tables_check_ids_against_the_packaged_reported_yaml_unless_given_one(tmp_path, capsys):
    """Without --reported, table-zeroshot and table-segmentation check the --published ids against the packaged
    reported.yaml (as the report verb reads it); an explicit --reported still wins."""
    from clipxai.report.reported import REPORTED

    zeroshot_csv = tmp_path / "zs.csv"
    pd.DataFrame([{"dataset": "colours", "model": "oracle", "n_images": 6, "n_split_images": 6, "n_classes": 3,
                   "n_templates": 1, "templates": "a {}", "top1": 1.0, "top1_lo": 1.0, "top1_hi": 1.0, "top5": 1.0,
                   "top5_lo": 1.0, "top5_hi": 1.0, "chance_top1": 1 / 3, "complete": True}]).to_csv(zeroshot_csv,
                                                                                                   index=False)
    keys = {"dataset": "colours", "model": "oracle", "split": "val", "alignment": "faithful", "absent": "zero"}
    summary_csv, per_class_csv = tmp_path / "sum.csv", tmp_path / "pc.csv"
    pd.DataFrame([{**keys, "n_images": 3, "n_split_images": 3, "miou": 0.5, "miou_lo": 0.4,
                   "miou_hi": 0.6}]).to_csv(summary_csv, index=False)
    pd.DataFrame([{**keys, "class_index": 0, "class_name": "blue", "iou": 0.5}]).to_csv(per_class_csv, index=False)
    own = tmp_path / "own.yaml"
    own.write_text("published:\n  own.number: {}\n")

    def zeroshot_table(*extra):
        return main(["table-zeroshot", "--results", str(zeroshot_csv), *extra, "--out-csv", str(tmp_path / "z.csv"),
                     "--out-md", str(tmp_path / "z.md")])

    def segmentation_table(*extra):
        return main(["table-segmentation", "--summaries", str(summary_csv), "--per-class", str(per_class_csv),
                     *extra, "--out-csv", str(tmp_path / "s.csv"), "--out-md", str(tmp_path / "s.md")])

    for table, flag, known in ((zeroshot_table, "--published", "clippy.imagenet_zeroshot_top1"),
                               (segmentation_table, "--published-miou", "clippy.voc_miou")):
        assert table(flag, f"colours:oracle={known}") == 0
        capsys.readouterr()
        assert table(flag, "colours:oracle=own.number") == 2  # not in the packaged file
        assert capsys.readouterr().err.strip().endswith(f"{REPORTED}: published.own.number: expected an entry "
                                                        f"for {flag} colours:oracle=own.number")
        assert table("--reported", str(own), flag, "colours:oracle=own.number") == 0
        assert table("--reported", str(own), flag, f"colours:oracle={known}") == 2
