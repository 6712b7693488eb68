"""clipxai.workflow without Snakemake: each cross-reference mistake is one line naming the key (the line
`snakemake -n` prints after "invalid configuration: "), and the plan's paths, inputs, arguments and targets."""

from __future__ import annotations

import copy

import pytest
import yaml

from clipxai import config as cfg
from clipxai.errors import InputError
from clipxai.workflow import checks, paths, plan
from conftest import REPO

DEFAULT = cfg.load(REPO / "config.yaml")
PAPER = cfg.load(REPO / "config/paper.yaml")


def _mutated(mutate):
    data = copy.deepcopy(DEFAULT)
    mutate(data)
    return data


def _add_open_clip_without_weights(d):
    d["models"]["oc"] = {"kind": "open_clip", "name": "ViT-B-32"}


# (mutation of config.yaml, the one line) for every kind of cross-reference mistake
MISTAKES = {
    "grounding data set": (lambda d: d["grounding"].update(datasets=["nope"]),
                           "config: grounding.datasets[0]: expected a data set defined under datasets, got 'nope'"),
    "toy trained on a non-shapes set": (lambda d: d["models"]["toy"].update(train_on="shapes_voc"),
                                        "config: models.toy.train_on: expected the name of a shapes data set"),
    "saliency model": (lambda d: d.setdefault("report", {}).update(saliency_models=["nope"]),
                       "report.saliency_models: 'nope' is not a model under models"),
    "segmentation data set kind": (lambda d: d["segmentation"].update(datasets=["shapes"]),
                                   "segmentation.datasets: 'shapes' is not a data set of kind voc or shapes-voc"),
    "segmentation model": (lambda d: d["segmentation"].update(models=["nope"]),
                           "segmentation.models: 'nope' is not a model under models"),
    "zeroshot data set kind": (lambda d: d["zeroshot"].update(datasets=["shapes_voc"]),
                               "zeroshot.datasets: 'shapes_voc' is not a data set of kind imagenet or shapes-imagenet"),
    "zeroshot model": (lambda d: d["zeroshot"].update(models=["nope"]),
                       "zeroshot.models: 'nope' is not a model under models"),
    "imagenet without path": (lambda d: d["datasets"].update(imnet={"kind": "imagenet", "shards": 1}),
                              "datasets.imnet.path: the folder of your own ImageNet validation set (licence-bound: "
                              "it is checked, never downloaded)"),
    "heads model": (lambda d: d["heads"].update(models=["nope"]),
                    "heads.models: expected models defined under models, got 'nope'"),
    "pool with source and generate": (lambda d: d["heads"]["text_pools"]["shapes"].update(source="x"),
                                      "heads.text_pools.shapes: expected exactly one of source (download) or generate"),
    "pool source not a text": (lambda d: d["heads"]["text_pools"].update(other={"source": "coco_val2017_images"}),
                               "heads.text_pools.other.source: expected a text source (pclens_top_1500_nouns_bias_"
                               "clean, pclens_top_1500_nouns_clean, sentence_t5_base_tokenizer, textspan_google_3498_"
                               "english, textspan_image_descriptions_general)"),
    "explained data set kind": (lambda d: d["heads"]["explain"].update(datasets=["shapes"]),
                                "heads.explain.datasets: expected data sets of kind imagenet, shapes-imagenet, "
                                "imagenet-seg, shapes-imagenet-seg, waterbirds, shapes-waterbirds, got 'shapes'"),
    "algorithm pool": (lambda d: d["heads"]["explain"]["algorithms"]["textspan"].update(pool="nowhere"),
                       "heads.explain.algorithms.textspan.pool: expected a pool under heads.text_pools"),
    "heads segmentation kind": (lambda d: d["heads"]["segmentation"].update(datasets=["shapes_imagenet"]),
                                "heads.segmentation.datasets: expected data sets of kind imagenet-seg or "
                                "shapes-imagenet-seg, got 'shapes_imagenet'"),
    "waterbirds kind": (lambda d: d["heads"]["waterbirds"].update(datasets=["shapes_seg"]),
                        "heads.waterbirds.datasets: expected data sets of kind waterbirds or shapes-waterbirds, "
                        "got 'shapes_seg'"),
    "waterbirds select_on": (lambda d: d["heads"]["waterbirds"].update(select_on="shapes_seg"),
                             "heads.waterbirds.select_on: expected one of heads.explain.datasets"),
    "waterbirds select_with": (lambda d: d["heads"]["waterbirds"].update(select_with="principal-faithful"),
                               "heads.waterbirds.select_with: expected the label of a textspan algorithm under "
                               "explain.algorithms"),
    "neighbours data set": (lambda d: d["heads"]["neighbours"].update(datasets=["shapes_seg"]),
                            "heads.neighbours.datasets: expected explained data sets, got 'shapes_seg'"),
    "neighbours algorithm": (lambda d: d["heads"]["neighbours"].update(algorithm="principal-faithful"),
                             "heads.neighbours.algorithm: expected the label of a textspan algorithm under "
                             "explain.algorithms"),
    "shapes-imagenet-seg size": (lambda d: d["datasets"]["shapes_seg"].pop("n_val"),
                                 "datasets.shapes_seg.n_val: expected a number for a shapes-imagenet-seg data set"),
    "shapes-waterbirds test split": (lambda d: d["datasets"]["shapes_waterbirds"].pop("n_test"),
                                     "datasets.shapes_waterbirds.n_test: expected a number for a shapes-waterbirds "
                                     "data set"),
    "faithfulness model": (lambda d: d["faithfulness"].update(models=["nope"]),
                           "faithfulness.models: 'nope' is not one of grounding.models (the curves perturb the pairs "
                           "whose grounding maps were made)"),
    "similarity model": (lambda d: d["similarity"].update(models=["nope"]),
                         "similarity.models: 'nope' is not a model under models"),
    "similarity method": (lambda d: d["similarity"].update(method="nope"),
                          "similarity.method: 'nope' is not a label under grounding.methods"),
    "similarity shapes study": (lambda d: d["similarity"]["studies"]["shapes"].update(dataset="shapes_voc"),
                                "similarity.studies.shapes.dataset: a data set of kind shapes-imagenet (single-object "
                                "images)"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_each_cross_reference_mistake_is_one_line_naming_the_key(mistake):
    mutate, line = MISTAKES[mistake]
    with pytest.raises(InputError) as err:
        checks.check_workflow(_mutated(mutate))
    assert str(err.value) == line


@pytest.mark.parametrize("config_file", ["config.yaml", "config/paper.yaml", "tests/data/config_tiny.yaml"])
def test_shipped_configs_pass_every_check(config_file):
    checks.check_workflow(cfg.load(REPO / config_file))


def test_the_first_mistake_in_the_workflows_order_is_reported():
    def two(d):
        d["heads"].update(models=["nope"])
        d["segmentation"].update(models=["nope2"])

    with pytest.raises(InputError, match="^segmentation.models: 'nope2'"):
        checks.check_workflow(_mutated(two))


def test_shapes_sizes_are_checked_only_with_a_heads_section():
    def no_heads(d):
        d.pop("heads")
        d["datasets"]["shapes_seg"].pop("n_val")

    checks.check_workflow(_mutated(no_heads))


def test_checks_do_not_change_the_config():
    data = copy.deepcopy(DEFAULT)
    checks.check_workflow(data)
    assert data == DEFAULT


def test_a_published_model_without_weights_is_a_mistake_when_its_weights_are_fetched():
    data = _mutated(_add_open_clip_without_weights)
    checks.check_workflow(data)  # only the fetch-weights job needs them
    with pytest.raises(InputError) as err:
        plan.weights_args(data, "oc")
    assert str(err.value) == ("models.oc: expected `pretrained` (an open_clip tag or a catalogued checkpoint) or "
                              "`checkpoint` (a local file or model folder)")


def test_paths_pass_wildcards_through():
    assert paths.maps_npz("{dataset}", "{model}", "{method}", "{shard}") == \
        "results/{dataset}/{model}/maps/{method}/{shard}.npz"
    assert paths.decomposition_done("d", "m", "val", 0) == "results/d/m/decomposition/val/0/meta.json"
    assert paths.sidecar(paths.table_path("grounding")) == "results/tables/grounding.json"
    assert paths.markdown_of(paths.table_path("x")) == "results/tables/x.md"
    assert paths.log_path("download", "d", "voc") == "logs/download/d/voc.log"
    assert paths.bench_path("report", "index") == "benchmarks/report/index.tsv"
    assert paths.png_json("d", "val") == "resources/data/d/annotations/png_coco_val2017.json"


def test_inputs_follow_the_data_set_kind():
    assert plan.dataset_inputs(DEFAULT, "shapes") == ["resources/data/shapes/annotations/png_coco_val2017.json"]
    assert plan.dataset_inputs(PAPER, "png") == [
        "resources/data/png/annotations/png_coco_val2017.json", "resources/data/png/.coco_val2017_images.json",
        "resources/data/png/.coco_panoptic_annotations.json"]
    assert plan.voc_inputs(PAPER, "voc") == [paths.voc_stamp("voc")]
    assert plan.voc_inputs(DEFAULT, "shapes_voc") == [paths.voc_list("shapes_voc", "val")]
    assert plan.kind_inputs(DEFAULT, "shapes_seg") == [
        "resources/data/shapes_seg/gtsegs_ijcv.mat", "resources/data/shapes_seg/gtsegs_ijcv_labels.json"]
    assert plan.kind_inputs(PAPER, "imagenet") == []
    waterbirds = next(d for d, s in PAPER["datasets"].items() if s["kind"] == "waterbirds")
    assert plan.data_root(PAPER, waterbirds) == f"resources/data/{waterbirds}/waterbird_complete95_forest2water2"
    assert plan.data_root(PAPER, "imagenet") == PAPER["datasets"]["imagenet"]["path"]
    assert plan.heads_data_args(DEFAULT, "shapes_seg") == "--data resources/data/shapes_seg --format imagenet-seg"


def test_model_files_and_arguments():
    assert plan.model_files(DEFAULT, "toy") == paths.toy_model_files("toy")
    assert plan.model_args(DEFAULT, "toy") == "--model resources/models/toy"
    published = next(m for m, s in PAPER["models"].items() if s["kind"] == "open_clip")
    assert plan.model_files(PAPER, published) == [f"resources/models/{published}/weights.json"]
    assert plan.model_args(PAPER, published).endswith(f"--checkpoint resources/models/{published}/weights.json")


def test_scoring_pairs_name_every_method_and_shard():
    args = plan.scoring_pairs(DEFAULT, "shapes", "toy")
    methods = plan.method_specs(DEFAULT)
    assert args.startswith("--maps chefer2021=results/shapes/toy/maps/chefer2021/0.npz")
    assert args.count("=results/shapes/toy/maps/") == len(methods) * DEFAULT["datasets"]["shapes"]["shards"]
    assert " --summary " in args and args.count("_summary.csv") == len(methods)


def test_targets_and_report_items():
    assert plan.segmentation_targets(DEFAULT)[:2] == ["results/tables/segmentation_voc.csv",
                                                      "results/tables/segmentation_voc.md"]
    heads = plan.heads_targets(DEFAULT)
    assert "results/tables/heads_texts.csv" in heads and "results/figures/head_neighbours_shapes_imagenet_toy.png" \
        in heads
    assert plan.heads_targets(_mutated(lambda d: d.pop("heads"))) == []
    assert plan.neighbours_algorithm(DEFAULT) == "textspan"
    assert plan.saliency_models(DEFAULT) == DEFAULT["grounding"]["models"][:1]
    assert plan.faithfulness_random(DEFAULT) == "random"
    assert plan.shapes_grounding_datasets(DEFAULT) == ["shapes"]
    items = plan.ReportItems()
    assert items.declare_table("b") == "results/tables/b.csv"
    items.declare_table("a")
    items.declare_table("b")
    items.declare_figure("f")
    assert items.tables == ["results/tables/b.csv", "results/tables/a.csv"]
    assert items.sidecars() == ["results/tables/b.json", "results/tables/a.json", "results/figures/f.json"]


def test_published_numbers_tie_only_real_data_sets():
    assert plan.segmentation_published_args(DEFAULT) == ""
    assert "--published-miou voc:clippy=clippy.voc_miou" in plan.segmentation_published_args(PAPER)
    known = set(yaml.safe_load((REPO / "src/clipxai/report/reported.yaml").read_text())["published"])
    assert plan.zeroshot_published_args(DEFAULT, known) == ""
    assert "--published imagenet:clippy=clippy.imagenet_zeroshot_top1" in plan.zeroshot_published_args(PAPER, known)
    assert plan.zeroshot_data_args(DEFAULT, "shapes_imagenet").startswith("--classnames dataset")
    assert plan.zeroshot_data_args(PAPER, "imagenet").startswith("--classnames imagenet")
