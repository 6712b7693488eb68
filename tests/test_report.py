"""The report from small hand-made result files (no model runs): numbers from result files, published numbers from
reported.yaml, the paper layout, provenance, escaping, a self-contained folder.

``build_run`` makes a finished-looking run in a folder (score summaries and per-entry CSVs, a generic table that
reproduces published numbers, figures with sidecars, benchmarks, data files); ``render_report`` runs the verbs the
workflow runs (table-grounding, report). tests/test_report_browser.py renders the same folder in Chromium.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from clipxai.cli import main
from clipxai.report import layouts, render
from clipxai.report import reported as reported_mod
from clipxai.errors import InputError
from clipxai.viz.provenance import write_sidecar
from conftest import REPO

REPORTED = REPO / "src/clipxai/report/reported.yaml"
TEMPLATES = REPO / "src/clipxai/report/templates"
SCRIPT_CAPTION = 'A phrase from a data set: <script>window.__pwned = 1;</script> & "quotes"'
PAPER = ("png", "vit-b-32-openai")   # the published setting
DEMO = ("shapes", "toy")             # not the published setting
METHODS = ["chefer2021", "chefer2021-all", "random", "unimodal"]

CONFIG = {
    "seed": 0,
    "datasets": {"png": {"kind": "png", "split": "val", "shards": 1},
                 "shapes": {"kind": "shapes", "image_size": 32, "n_train": 10, "n_val": 4, "shards": 1}},
    "models": {"vit-b-32-openai": {"kind": "open_clip", "name": "ViT-B-32-quickgelu", "pretrained": "openai"},
               "toy": {"kind": "toy", "train_on": "shapes", "steps": 1}},
    "grounding": {"datasets": ["png", "shapes"], "models": ["vit-b-32-openai", "toy"],
                  "methods": {"chefer2021": {"start_layer": -1},
                              "chefer2021-all": {"method": "chefer2021", "start_layer": 0},
                              "random": {}, "unimodal": {}},
                  "modes": ["faithful", "corrected"], "bootstrap": 100},
}


def summary_value(block: tuple[str, str], method: str, direction: str, mode: str) -> float:
    """A distinct, recognisable mean per cell (so a test can find exactly the cell it expects)."""
    base = {"chefer2021": 0.5, "chefer2021-all": 0.45, "random": 0.27, "unimodal": 0.43}[method]
    return round(base + (0.0123 if direction == "i2t" else 0.0) + (0.0011 if mode == "corrected" else 0.0)
                 + (0.1 if block == DEMO else 0.0), 4)


def write_scores(root: Path, block: tuple[str, str], method: str, n_dataset_entries: int = 10,
                 in_scope: int = 10) -> None:
    """Summary and per-entry CSVs of ``in_scope`` entries in scope (10 of them listed), of ``n_dataset_entries`` in
    the split (more: partial)."""
    folder = root / "results" / block[0] / block[1] / "scores" / "grounding"
    folder.mkdir(parents=True, exist_ok=True)
    rows, entries = [], []
    for direction in ("i2t", "t2i"):
        for mode in ("corrected", "faithful"):
            mean = summary_value(block, method, direction, mode)
            excluded = 2 if (mode == "faithful" and direction == "i2t") else 0
            rows.append({"direction": direction, "mode": mode, "n_entries": in_scope - excluded, "n_excluded": excluded,
                         "macro_mean": mean, "macro_lo": round(mean - 0.02, 4), "macro_hi": round(mean + 0.02, 4),
                         "fg_mean": round(mean / 2, 4), "fg_lo": round(mean / 2 - 0.01, 4),
                         "fg_hi": round(mean / 2 + 0.01, 4), "n_dataset_entries": n_dataset_entries})
            for k in range(10):
                reason = "over_70_words" if k < excluded else ""
                entries.append({"entry_id": f"1_0_{k}", "direction": direction, "mode": mode,
                                "macro_iou": "" if reason else mean, "fg_iou": "" if reason else mean / 2,
                                "excluded_reason": reason})
    pd.DataFrame(rows).to_csv(folder / f"{method}_summary.csv", index=False)
    pd.DataFrame(entries).to_csv(folder / f"{method}.csv", index=False)


def write_figure(path: Path, title: str, caption: str, colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (60, 40), colour).save(path)
    path.with_suffix(".pdf").write_bytes(b"%PDF-1.4\n% hand-made stand-in\n")
    write_sidecar(path, title=title, caption=caption, rule="figure_test", command="clipxai figure-test",
                  inputs=["results/tables/grounding.csv"], section="saliency")


def build_run(root: Path) -> dict:
    """Hand-made result files of a finished run under ``root``; returns the report verb's arguments."""
    for block in (PAPER, DEMO):
        for method in METHODS:
            # the paper block is the published split: every one of its 44,008 T2I entries in scope
            write_scores(root, block, method, *((44008, 44008) if block == PAPER else ()))
    summaries = [f"results/{d}/{m}/scores/grounding/{meth}_summary.csv" for d, m in (PAPER, DEMO) for meth in METHODS]
    entries = [s.replace("_summary.csv", ".csv") for s in summaries]
    # a table of another rule that reproduces published numbers (generic layout, `reported` + `value` columns)
    voc = root / "results" / "tables" / "voc.csv"
    voc.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([
        {"dataset": "voc", "model": "clippy", "metric": "mIoU", "value": 0.4900, "lo": 0.47, "hi": 0.51,
         "reported": "clippy.voc_miou"},
        {"dataset": "voc", "model": "clippy", "metric": "JI", "value": 0.4600, "lo": np.nan, "hi": np.nan,
         "reported": "clippy.voc_ji"},
        {"dataset": "voc", "model": "clippy", "metric": "pixel accuracy", "value": 0.8100, "lo": np.nan,
         "hi": np.nan, "reported": ""},
    ]).to_csv(voc, index=False)
    write_sidecar(voc, title="VOC dense segmentation", caption="mIoU of the CLIPpy protocol.", rule="table_voc",
                  command="clipxai table-segmentation", inputs=["results/voc/clippy/segmentation.csv"],
                  section="segmentation")
    figures = [root / "results" / "figures" / "saliency_methods_png_vit-b-32-openai.png",
               root / "results" / "figures" / "saliency_layers_png_vit-b-32-openai.png"]
    write_figure(figures[0], "Saliency methods compared", SCRIPT_CAPTION, (200, 30, 30))
    write_figure(figures[1], "Layer-wise attention", "Per block.", (30, 30, 200))
    bench = root / "benchmarks"
    for rule, job, seconds, rss in [("ground", "png/vit-b-32-openai/chefer2021/0", 12.5, 900.0),
                                    ("ground", "png/vit-b-32-openai/random/0", 2.5, 300.0),
                                    ("report", "index", 1.0, 120.0)]:
        path = bench / rule / f"{job}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("s\th:m:s\tmax_rss\tmax_vms\n" f"{seconds}\t0:00:{int(seconds):02d}\t{rss}\t1000.0\n")
    data = root / "resources" / "data" / "png" / "annotations" / "png_coco_val2017.json"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text('[{"image_id": 1, "caption": "a cat", "segments": []}]\n')
    (root / "resources" / "data" / "png" / "images").mkdir(parents=True, exist_ok=True)
    (root / "resources" / "data" / "png" / "images" / "000000000001.jpg").write_bytes(b"not really a jpeg")
    return {"summaries": summaries, "entries": entries,
            "tables": ["results/tables/grounding.csv", str(voc.relative_to(root))],
            "figures": [str(f.relative_to(root)) for f in figures], "inputs": [str(data.relative_to(root))],
            "checksum_dirs": ["resources/data/png"]}


def render_report(root: Path, run: dict, reported: Path = REPORTED) -> str:
    """table-grounding then report, as the workflow runs them (cwd = the run folder); returns index.html."""
    assert main(["table-grounding", "--summaries", *run["summaries"], "--entries", *run["entries"],
                 "--out-csv", "results/tables/grounding.csv", "--out-md", "results/tables/grounding.md"]) == 0
    assert main(["report", "--config-json", json.dumps(CONFIG), "--reported", str(reported),
                 "--tables", *run["tables"], "--figures", *run["figures"], "--inputs", *run["inputs"],
                 "--checksum-dirs", *run["checksum_dirs"], "--benchmarks-dir", "benchmarks",
                 "--template-dir", str(TEMPLATES), "--out-dir", "results/report"]) == 0
    return (root / "results" / "report" / "index.html").read_text()


@pytest.fixture()
def run_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path, build_run(tmp_path)


def table_html(html: str, table_id: str) -> str:
    match = re.search(rf'<table[^>]*id="{re.escape(table_id)}"[^>]*>(.*?)</table>', html, re.S)
    assert match, f"no table {table_id}"
    return match.group(1)


def rows_of(table: str) -> list[str]:
    """The text of each row of a table's HTML (tags dropped, entities decoded, whitespace collapsed)."""
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", r)).split()) for r in rows]


def test_paper_layout_cells_hold_reproduced_ci_published_and_difference(run_dir):
    root, run = run_dir
    html = render_report(root, run)
    rows = rows_of(table_html(html, "paper-grounding-png-vit-b-32-openai"))
    assert len(rows) == 3  # header, T2I, I2T
    assert rows[0].startswith("macro IoU, faithful protocol Random")
    t2i = rows[1]
    assert t2i.startswith("Text-to-Image")
    # CLIP column = chefer2021 (start_layer -1, the published setting): 0.5000 [0.4800, 0.5200], published 0.4917
    assert "0.5000 [0.4800, 0.5200] n = 44008 published 0.4917 Δ +0.0083" in t2i
    # Random: 0.2700 vs 0.2763; CLIP-Unimodal: unimodal with the default start_layer -1: 0.4300 vs 0.4310
    assert "0.2700 [0.2500, 0.2900] n = 44008 published 0.2763 Δ -0.0063" in t2i
    assert "0.4300 [0.4100, 0.4500] n = 44008 published 0.4310 Δ -0.0010" in t2i
    # the all-blocks variant is not the published setting: its own column, no published value
    assert "0.4500 [0.4300, 0.4700] n = 44008" in t2i and t2i.count("published") == 3
    i2t = rows[2]
    assert "0.5123 [0.4923, 0.5323] n = 44006 published 0.5099 Δ +0.0024" in i2t


def test_difference_is_not_computed_outside_the_published_setting(run_dir):
    root, run = run_dir
    html = render_report(root, run)
    rows = rows_of(table_html(html, "paper-grounding-shapes-toy"))
    assert "0.6000 [0.5800, 0.6200] n = 10 published 0.4917 Δ n/a: different data / model" in rows[1]
    assert "Δ +" not in " ".join(rows) and "Δ -" not in " ".join(rows)
    assert "Not the published setting" in html


def test_faithful_and_corrected_side_by_side_with_exclusions(run_dir):
    root, run = run_dir
    html = render_report(root, run)
    protocols = rows_of(table_html(html, "protocols-grounding-png-vit-b-32-openai"))
    assert len(protocols) == 1 + len(METHODS) * 2
    chefer_i2t = next(r for r in protocols if r.startswith("chefer2021 i2t"))
    # faithful 0.5123, corrected 0.5134: delta +0.0011; 8 vs 10 entries scored, 2 vs 0 excluded
    assert "0.5123 [0.4923, 0.5323] 0.5134 [0.4934, 0.5334] +0.0011" in chefer_i2t
    assert chefer_i2t.endswith("44006 / 44008 2 / 0")
    exclusions = rows_of(table_html(html, "exclusions-grounding-png-vit-b-32-openai"))
    assert len(exclusions) == 1 + len(METHODS)  # one reason, i2t faithful, per method
    assert all("over_70_words 2" in r for r in exclusions[1:])
    counts = pd.read_csv(root / "results" / "tables" / "grounding_exclusions.csv")
    assert counts["count"].sum() == 2 * len(METHODS) * 2  # 2 entries x methods x (paper, demo)


def test_changing_one_result_file_changes_the_report(run_dir):
    root, run = run_dir
    before = render_report(root, run)
    assert "0.5000 [0.4800, 0.5200]" in rows_of(table_html(before, "paper-grounding-png-vit-b-32-openai"))[1]
    path = root / run["summaries"][0]  # png / vit-b-32-openai / chefer2021
    frame = pd.read_csv(path)
    frame.loc[(frame.direction == "t2i") & (frame["mode"] == "faithful"), ["macro_mean", "macro_lo", "macro_hi"]] = \
        [0.3141, 0.3001, 0.3299]
    frame.to_csv(path, index=False)
    after = render_report(root, run)
    row = rows_of(table_html(after, "paper-grounding-png-vit-b-32-openai"))[1]
    assert "0.3141 [0.3001, 0.3299] n = 44008 published 0.4917 Δ -0.1776" in row
    assert "0.5000 [0.4800, 0.5200]" not in " ".join(rows_of(after))


def test_published_numbers_come_from_reported_yaml(run_dir, tmp_path):
    root, run = run_dir
    altered = yaml.safe_load(REPORTED.read_text())
    altered["published"]["clip_grounding.t2i.clip"]["published"] = "0.7777"
    path = tmp_path / "reported.yaml"
    path.write_text(yaml.safe_dump(altered))
    html = render_report(root, run, reported=path)
    t2i = rows_of(table_html(html, "paper-grounding-png-vit-b-32-openai"))[1]
    assert "published 0.7777 Δ -0.2777" in t2i and "0.4917" not in t2i


def test_generic_table_gets_published_value_difference_and_unverified_mark(run_dir):
    root, run = run_dir
    html = render_report(root, run)
    rows = rows_of(table_html(html, "table-voc-data"))
    assert rows[0] == "dataset model metric value lo hi published Δ"
    assert rows[1] == "voc clippy mIoU 0.4900 0.4700 0.5100 50.8 % -0.0180"   # 0.49 - 50.8 %
    assert rows[2] == "voc clippy JI 0.4600 - - 47.5 % (unverified) n/a: published number unverified"
    assert rows[3] == "voc clippy pixel accuracy 0.8100 - - - -"
    glance = rows_of(table_html(html, "glance-table"))
    # the 6 published cells of each grounding block (the demo block's without a difference) + the 2 VOC rows
    assert len(glance) == 1 + 2 + 6 + 6 + 2  # header, one row per table, the compared values
    assert sum("n/a: different data / model" in r for r in glance) == 6
    assert any("50.8 % -0.0180" in r for r in glance)
    ji = next(r for r in glance if r.startswith("Jaccard index"))
    assert "0.4600 47.5 %" in ji  # no interval given: none drawn


def test_captions_and_titles_from_data_are_escaped(run_dir):
    root, run = run_dir
    html = render_report(root, run)
    assert "<script>" not in html.split("</style>", 1)[1]  # no script anywhere in the page
    assert "&lt;script&gt;window.__pwned = 1;&lt;/script&gt; &amp; &#34;quotes&#34;" in html


def test_report_folder_is_self_contained(run_dir):
    root, run = run_dir
    html = render_report(root, run)
    out = root / "results" / "report"
    links = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert links
    for link in links:
        assert not re.match(r"^[a-z]+:", link), link  # no remote (or file:) asset
        if not link.startswith("#"):
            assert (out / link).is_file(), link
    # the figures are copies of the run's figures, and the manifest lists every data file with its sha256
    assert (out / "figures" / "saliency_methods_png_vit-b-32-openai.png").read_bytes() == \
        (root / run["figures"][0]).read_bytes()
    manifest = (out / "inputs.sha256").read_text().splitlines()
    image = root / "resources" / "data" / "png" / "images" / "000000000001.jpg"
    assert f"{hashlib.sha256(image.read_bytes()).hexdigest()}  resources/data/png/images/000000000001.jpg" in manifest
    assert len(manifest) == 2


def test_provenance_names_rule_command_inputs_and_benchmarks(run_dir):
    root, run = run_dir
    html = render_report(root, run)
    assert "Made by rule <code>table_grounding</code> (<code>clipxai table-grounding</code>)" in html
    assert "<code>results/png/vit-b-32-openai/scores/grounding/chefer2021_summary.csv</code>" in html
    rules = rows_of(table_html(html, "rules"))
    assert rules[1:] == ["ground 2 15.0 12.5 900", "report 1 1.0 1.0 120"]
    inputs = rows_of(table_html(html, "inputs"))
    data = root / run["inputs"][0]
    assert inputs[1] == f"{run['inputs'][0]} {data.stat().st_size} {hashlib.sha256(data.read_bytes()).hexdigest()}"
    assert "ViT-B-32-quickgelu" in html.split('id="provenance"')[1]  # the config as run


def test_a_table_without_its_sidecar_is_refused_by_name(run_dir):
    root, run = run_dir
    render_report(root, run)
    (root / "results" / "tables" / "voc.json").unlink()
    with pytest.raises(InputError, match=r"voc\.json: \(file\): expected the sidecar"):
        render.collect_tables([run["tables"][1]], root / "out", CONFIG, reported_mod.load_reported(REPORTED))


def test_reported_yaml_entries_are_complete():
    reported = reported_mod.load_reported(REPORTED)
    published = reported["published"]
    for key, entry in published.items():
        assert entry["source_info"]["where"], key
        assert float(entry["published"]) == pytest.approx(entry["value"] * (100 if entry["unit"] == "percent" else 1))
    # the seeds' numbers, exactly as printed there
    seeds = Path("/work/shared/seeds")  # the project's copies of the sources (absent outside this workplace)
    for seed, prefix in (("000_6342fc12a4ddb52f.txt", "clip_grounding."), ("002_d27c502813d0e892.txt", "clippy.")):
        if (seeds / seed).is_file():
            text = (seeds / seed).read_text()
            for key in [k for k in published if k.startswith(prefix)]:
                assert f" {published[key]['published']} " in text, key
    assert published["clippy.voc_ji"]["verified"] is False
    # every paper-layout column points at both directions' published entries
    for column in reported["grounding"]["columns"]:
        assert published[column["t2i"]]["table"].startswith("results table, row 'Text-to-Image")
        assert published[column["i2t"]]["table"].startswith("results table, row 'Image-to-Text")


def test_reported_defaults_are_the_registry_defaults():
    from clipxai import attribution

    for column in reported_mod.load_reported(REPORTED)["grounding"]["columns"]:
        registry = attribution.get(column["method"]).params
        assert {k: registry[k] for k in column["defaults"]} == column["defaults"], column["title"]
        assert set(column["params"]) <= set(registry), column["title"]


def test_a_configured_method_runs_a_column_only_with_the_published_parameters():
    clip = next(c for c in reported_mod.load_reported(REPORTED)["grounding"]["columns"] if c["title"] == "CLIP")
    assert layouts.runs_column("chefer2021", {}, clip)                      # default start_layer -1
    assert layouts.runs_column("chefer2021", {"start_layer": -1}, clip)
    assert not layouts.runs_column("chefer2021", {"start_layer": 0}, clip)  # all blocks: not the paper's
    assert not layouts.runs_column("rollout", {}, clip)


def test_reported_yaml_refuses_a_number_that_lost_its_digits(tmp_path):
    altered = yaml.safe_load(REPORTED.read_text())
    altered["published"]["clip_grounding.t2i.clip"]["published"] = 0.4917  # unquoted: 0.4310 would become 0.431
    path = tmp_path / "reported.yaml"
    path.write_text(yaml.safe_dump(altered))
    with pytest.raises(InputError, match="published.clip_grounding.t2i.clip.published"):
        reported_mod.load_reported(path)


def test_copy_of_run_renders_identically_apart_from_the_timestamp(run_dir, tmp_path_factory, monkeypatch):
    root, run = run_dir
    first = render_report(root, run)
    other = tmp_path_factory.mktemp("copy") / "run"
    shutil.copytree(root, other, ignore=lambda folder, names: ["report"] if Path(folder).name == "results" else [])
    monkeypatch.chdir(other)
    second = render_report(other, run)
    strip = re.compile(r"Generated [^<]* from commit")
    assert strip.sub("", first) == strip.sub("", second)


def test_zeroshot_shapes_table_collects_every_model_with_provenance(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = []
    for model, top1 in (("toy", 0.5), ("untrained", 0.1)):
        path = Path("results/shapes") / model / "zeroshot.csv"
        path.parent.mkdir(parents=True)
        pd.DataFrame({"subset": ["all", "held-out combinations"], "n_images": [20, 4], "top1": [top1, top1 / 2],
                      "chance_top1": [1 / 30, 1 / 30]}).to_csv(path, index=False)
        paths.append(str(path))
    assert main(["table-zeroshot-shapes", "--results", *paths, "--out", "results/tables/zeroshot_shapes.csv"]) == 0
    table = pd.read_csv("results/tables/zeroshot_shapes.csv")
    assert list(table.columns[:3]) == ["dataset", "model", "subset"]
    assert table[["model", "top1"]].values.tolist() == [["toy", 0.5], ["toy", 0.25], ["untrained", 0.1],
                                                         ["untrained", 0.05]]
    meta = json.loads(Path("results/tables/zeroshot_shapes.json").read_text())
    assert meta["inputs"] == paths and meta["rule"] == "table_zeroshot_shapes"
    pd.read_csv(paths[0]).drop(columns=["top1"]).to_csv(paths[0], index=False)
    assert main(["table-zeroshot-shapes", "--results", *paths, "--out", "x.csv"]) == 2


# ------------------------------------------------------------------------------------------ partial runs


def test_a_miniature_split_of_the_published_kind_is_partial(run_dir):
    """Every entry of a small PNG file in scope (a rehearsal mirror, a subset) is still not the published data:
    "10 of 44008 entries", no difference."""
    root, run = run_dir
    for method in METHODS:
        write_scores(root, PAPER, method)
    html = render_report(root, run)
    rows = rows_of(table_html(html, "paper-grounding-png-vit-b-32-openai"))
    assert "0.5000 [0.4800, 0.5200] n = 10 published 0.4917 Δ n/a: partial run: 10 of 44008 entries" in rows[1]
    assert "This is the published setting" not in html


def test_a_local_checkpoint_under_the_published_name_gets_no_difference(run_dir, monkeypatch):
    import copy

    root, run = run_dir
    config = copy.deepcopy(CONFIG)
    config["models"]["vit-b-32-openai"]["checkpoint"] = "weights/local.safetensors"
    monkeypatch.setitem(globals(), "CONFIG", config)
    rows = rows_of(table_html(render_report(root, run), "paper-grounding-png-vit-b-32-openai"))
    assert "n/a: a local checkpoint, not the published weights" in rows[1]


def test_partial_grounding_run_is_marked_n_of_m_and_gets_no_difference(run_dir):
    root, run = run_dir
    full = render_report(root, run)
    assert "This is the published setting" in full and "Partial run" not in full
    # the same scores, but 10 of the split's 1000 entries in scope (max_entries): a partial run
    for method in METHODS:
        write_scores(root, PAPER, method, n_dataset_entries=1000)
    html = render_report(root, run)
    table = pd.read_csv(root / "results" / "tables" / "grounding.csv")
    assert (table[table.dataset == "png"]["complete"] == False).all()  # noqa: E712
    assert (table[table.dataset == "shapes"]["complete"] == True).all()  # noqa: E712
    assert json.loads((root / "results" / "tables" / "grounding.json").read_text())["complete"] is False
    md = (root / "results" / "tables" / "grounding.md").read_text()
    assert md.count("Partial run: 10 of 1000 entries") == 4  # png x 2 modes x 2 metrics; none for shapes
    rows = rows_of(table_html(html, "paper-grounding-png-vit-b-32-openai"))
    # the reproduced value and the published one are shown, the difference is not
    assert "0.5000 [0.4800, 0.5200] n = 10 published 0.4917 Δ n/a: partial run: 10 of 1000 entries" in rows[1]
    assert "Δ +" not in " ".join(rows) and "Δ -" not in " ".join(rows)
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
    assert ("png / vit-b-32-openai Partial run: 10 of 1000 entries of the split were in scope, so Δ is not computed"
            in text)
    assert "This is the published setting" not in html
    glance = rows_of(table_html(html, "glance-table"))
    assert sum("n/a: partial run: 10 of 1000 entries" in r for r in glance) == 6
    # the numbers themselves are the full run's: only the labels changed
    assert re.sub(r"Partial run[^<]*", "", html).count("0.5000 [0.4800, 0.5200]") == \
        re.sub(r"Partial run[^<]*", "", full).count("0.5000 [0.4800, 0.5200]")


def test_a_summary_without_the_split_size_is_refused_by_name(run_dir, capsys):
    root, run = run_dir
    path = root / run["summaries"][0]
    pd.read_csv(path).drop(columns=["n_dataset_entries"]).to_csv(path, index=False)
    code = main(["table-grounding", "--summaries", *run["summaries"], "--entries", *run["entries"],
                 "--out-csv", "results/tables/grounding.csv", "--out-md", "results/tables/grounding.md"])
    assert code == 2 and f"{run['summaries'][0]}: n_dataset_entries" in capsys.readouterr().err
    assert not (root / "results" / "tables" / "grounding.csv").exists()


def test_partial_rows_of_a_generic_table_get_no_difference(run_dir):
    root, run = run_dir
    voc = root / "results" / "tables" / "voc.csv"
    frame = pd.read_csv(voc, keep_default_na=False, na_values=[""])
    # one run on 4 of the split's 1449 images next to a complete one: the same value, only one gets a difference
    partial = frame.iloc[[0]].assign(model="clippy-4")
    frame = pd.concat([frame, partial], ignore_index=True)
    frame["n_images"] = [1449, 1449, 1449, 4]
    frame["n_split_images"] = 1449
    frame["complete"] = [True, True, True, False]
    frame.to_csv(voc, index=False)
    html = render_report(root, run)
    rows = rows_of(table_html(html, "table-voc-data"))
    assert rows[1].startswith("voc clippy mIoU 0.4900") and rows[1].endswith("50.8 % -0.0180")
    assert rows[4].startswith("voc clippy-4 mIoU 0.4900")
    assert rows[4].endswith("50.8 % n/a: partial run: 4 of 1449 entries")
    assert "Partial run: 4 of 1449 entries; Δ is not computed for those rows." in " ".join(unescape(html).split())


def test_zeroshot_rows_flagged_incomplete_get_no_difference():
    reported = reported_mod.load_reported(REPORTED)
    key = next(k for k, e in reported["published"].items() if e["verified"])
    frame = pd.DataFrame([{"dataset": "imagenet", "model": m, "metric": "top1", "value": 0.5, "lo": 0.4, "hi": 0.6,
                           "n_images": n, "complete": complete, "reported": key}
                          for m, n, complete in (("full", 50000, True), ("first-100", 100, False))])
    view = layouts.generic_view(frame, reported)
    full, partial = (row["comparison"] for row in view["rows"])
    assert full["difference"] == pytest.approx(0.5 - reported["published"][key]["value"])
    assert partial["difference"] is None and partial["why"] == "partial run: 100 entries, not the whole split"
    assert view["partial"] == "100 entries, not the whole split"
    assert layouts.generic_view(frame.drop(columns=["complete"]), reported)["partial"] is None


# ------------------------------------------------------------------------------------------ golden page

GOLDEN = REPO / "tests" / "data" / "report_golden.html"


def normalised(html: str) -> str:
    """The page without what changes between renders of the same inputs: the time, the commit, the machine."""
    html = re.sub(r"Generated [^<]* from commit <code>[^<]*</code>", "Generated TIME from commit <code>COMMIT</code>",
                  html)
    return re.sub(r'<table id="machine">.*?</table>', '<table id="machine"></table>', html, flags=re.S)


def test_report_html_equals_the_golden_page(run_dir):
    """The page of build_run's fixture equals tests/data/report_golden.html, rendered by the report verb before it
    was split into clipxai.report (commit 9a93593): a refactor of the report changes no byte of the page. A
    deliberate change to the page regenerates the golden file (render this fixture, apply ``normalised``)."""
    root, run = run_dir
    html = normalised(render_report(root, run))
    golden = GOLDEN.read_text(encoding="utf-8")
    if html != golden:
        at = next((i for i, (a, b) in enumerate(zip(html, golden)) if a != b), min(len(html), len(golden)))
        pytest.fail(f"page differs from {GOLDEN.name} at character {at}: {html[at - 80:at + 80]!r}")


def test_a_method_without_text_maps_says_so_in_the_image_to_text_row():
    """dense maps image patches only: its empty I2T cell reads "no text map", not "not run"."""
    import pandas as pd

    from clipxai.report import layouts
    from clipxai.report.reported import load_reported

    row = dict(dataset="shapes", model="toy", mode="faithful", n_entries=10, n_excluded=0, macro_mean=0.5,
               macro_lo=0.4, macro_hi=0.6, fg_mean=0.3, fg_lo=0.2, fg_hi=0.4, n_dataset_entries=10, complete=True)
    table = pd.DataFrame([{**row, "method": m, "direction": d}
                          for m, d in (("chefer2021", "t2i"), ("chefer2021", "i2t"), ("dense", "t2i"))])
    exclusions = pd.DataFrame(columns=["dataset", "model", "method", "direction", "reason", "count"])
    config = {"grounding": {"methods": {"chefer2021": {}, "dense": {}}}}
    (block,) = layouts.grounding_blocks(table, exclusions, config, load_reported())
    i2t = {c["title"]: c for c in next(r for r in block["paper_rows"] if r["direction"] == "i2t")["cells"]}
    assert i2t["dense"]["reproduced"] is None and i2t["dense"]["missing"] == "no text map"
    t2i = {c["title"]: c for c in next(r for r in block["paper_rows"] if r["direction"] == "t2i")["cells"]}
    assert t2i["dense"]["reproduced"]["mean"] == 0.5  # the paper layout shows macro IoU


def test_header_lists_what_ran_and_names_what_only_the_config_defines(run_dir, monkeypatch):
    """paper.yaml defines models a run may not use (the rehearsal swaps ViT-H-14 for ViT-L-14): the header lists
    the data sets and models that some table has rows of, and names the others as configured but in no table."""
    root, run = run_dir
    config = json.loads(json.dumps(CONFIG))
    config["models"]["vit-h-14"] = {"kind": "open_clip", "name": "ViT-H-14", "pretrained": "laion2b_s32b_b79k"}
    monkeypatch.setattr(sys.modules[__name__], "CONFIG", config)
    html = render_report(root, run)
    header = html[html.index('<p class="sub">'):html.index("</p>", html.index('<p class="sub">'))]
    models = header[header.index("models:"):]
    assert "<b>vit-b-32-openai</b>" in models and "<b>toy</b>" in models and "<b>vit-h-14</b>" not in models
    assert header.rstrip(".").endswith("configured but in no table: vit-h-14")
