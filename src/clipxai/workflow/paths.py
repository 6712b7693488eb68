"""Every path pattern of the workflow, declared once: plain functions of strings (a wildcard such as "{dataset}"
passes through, so the rules' outputs use the same functions as their consumers' inputs).

Torch-free: the Snakefile parses with it.
"""

from __future__ import annotations

# Checksums recorded at the first download of files whose publishers give none (committed: later runs verify).
CHECKSUM_LOCK = "config/checksums.lock.yaml"
# Where fetch-weights puts published weights (hub files and URL downloads alike): inside the workflow, so compute
# nodes read exactly the files the stamps record, never a per-user cache.
WEIGHTS_CACHE = "resources/weights"


# ---- resources: data sets, models, text pools ----
def dataset_root(dataset: str) -> str:
    return f"resources/data/{dataset}"


def png_json(dataset: str, split: str) -> str:
    return f"{dataset_root(dataset)}/annotations/png_coco_{split}2017.json"


def voc_list(dataset: str, split: str) -> str:
    return f"{dataset_root(dataset)}/VOCdevkit/VOC2012/ImageSets/Segmentation/{split}.txt"


def voc_stamp(dataset: str) -> str:
    return f"{dataset_root(dataset)}/.voc2012_trainval.json"


def model_dir(model: str) -> str:
    return f"resources/models/{model}"


def toy_model_files(model: str) -> list[str]:
    """The trained toy model: its open_clip config and weights."""
    return [f"{model_dir(model)}/open_clip_config.json", f"{model_dir(model)}/open_clip_model.safetensors"]


def weights_stamp(model: str) -> str:
    """The stamp fetch-weights writes for published weights (the file it fetched, verified on load)."""
    return f"{model_dir(model)}/weights.json"


def text_pool_path(pool: str) -> str:
    return f"resources/text/{pool}.txt"


# ---- results: grounding ----
def maps_npz(dataset: str, model: str, method: str, shard) -> str:
    return f"results/{dataset}/{model}/maps/{method}/{shard}.npz"


def grounding_scores(dataset: str, model: str, method: str) -> str:
    return f"results/{dataset}/{model}/scores/grounding/{method}.csv"


def grounding_summary(dataset: str, model: str, method: str) -> str:
    return f"results/{dataset}/{model}/scores/grounding/{method}_summary.csv"


def faithfulness_entries(dataset: str, model: str, method: str) -> str:
    return f"results/{dataset}/{model}/scores/faithfulness/{method}.csv"


def zeroshot_csv(dataset: str, model: str) -> str:
    return f"results/{dataset}/{model}/zeroshot.csv"


# ---- results: heads ----
def decomposition_dir(dataset: str, model: str, split: str, shard) -> str:
    return f"results/{dataset}/{model}/decomposition/{split}/{shard}"


def decomposition_done(dataset: str, model: str, split: str, shard) -> str:
    """A decomposition shard is complete when its meta.json exists (clipxai.models.decompose.write_shard)."""
    return f"{decomposition_dir(dataset, model, split, shard)}/meta.json"


def classifier_npy(dataset: str, model: str) -> str:
    return f"results/{dataset}/{model}/classifier.npy"


def heads_csv(dataset: str, model: str, algorithm: str) -> str:
    return f"results/{dataset}/{model}/heads/{algorithm}.csv"


def segmentation_maps(dataset: str, model: str, method: str, shard) -> str:
    return f"results/{dataset}/{model}/segmaps/{method}/{shard}.npz"


def segmentation_scores(dataset: str, model: str) -> str:
    return f"results/{dataset}/{model}/scores/imagenet_segmentation.csv"


def waterbirds_result(dataset: str, model: str, name: str) -> str:
    return f"results/{dataset}/{model}/waterbirds/{name}"


# ---- results: dense segmentation, zero-shot classification, similarity ----
def segmentation_result(dataset: str, model: str, name: str) -> str:
    return f"results/{dataset}/{model}/segmentation/{name}"


def zeroshot_result(dataset: str, model: str, name: str) -> str:
    return f"results/{dataset}/{model}/zeroshot/{name}"


def similarity_npz(study: str, model: str) -> str:
    return f"results/similarity/{study}/{model}.npz"


# ---- tables, figures, the report ----
def table_path(name: str) -> str:
    return f"results/tables/{name}.csv"


def figure_path(name: str) -> str:
    return f"results/figures/{name}.png"


def sidecar(path: str) -> str:
    """The JSON sidecar beside a table (.csv) or figure (.png)."""
    return path.rsplit(".", 1)[0] + ".json"


def markdown_of(path: str) -> str:
    return path.rsplit(".", 1)[0] + ".md"


def segmentation_figure(dataset: str, model: str) -> str:
    return figure_path(f"segmentation_examples_{dataset}_{model}")


def segmentation_class_table(dataset: str) -> str:
    return table_path(f"segmentation_voc_classes_{dataset}")


def neighbours_figure(dataset: str, model: str) -> str:
    return figure_path(f"head_neighbours_{dataset}_{model}")


def report_dir() -> str:
    """The report folder: index.html with the figures and tables it shows (self-contained: zip it, mail it)."""
    return "results/report"


def report_html() -> str:
    return f"{report_dir()}/index.html"


# ---- logs and benchmarks ----
def log_path(rule_name: str, *parts: str) -> str:
    return f"logs/{rule_name}/{'/'.join(parts)}.log"


def bench_path(rule_name: str, *parts: str) -> str:
    return f"benchmarks/{rule_name}/{'/'.join(parts)}.tsv"
