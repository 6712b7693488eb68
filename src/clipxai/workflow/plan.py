"""What the workflow runs, as plain functions of the (validated) config dict: the sections with their defaults,
method specs, the files each job reads, the verbs' arguments, the targets and the report's tables and figures.
rules/common*.smk wrap them as Snakemake input functions; tests call them without Snakemake.

Torch-free: the Snakefile parses with it.
"""

from __future__ import annotations

import json
import re
import shlex

from clipxai.config import method_specs
from clipxai.data.kinds import KINDS, is_real, needed_files
from clipxai.workflow import paths

__all__ = ["method_specs"]

# Optional sections, as the workflow reads them when they are absent.
_SECTION_DEFAULTS = {
    "segmentation": {"datasets": [], "models": []},
    "zeroshot": {"datasets": [], "models": []},
    "faithfulness": {"models": []},
    "similarity": {"models": [], "studies": {}},
}
CLIPPY_SPEC = ("clippy-B-16", "clippy_5k")  # (open_clip name, checkpoint) of the published CLIPpy numbers
# The Waterbirds protocol: accuracy on the test split, ablation means from the validation split (corrected mode).
WATERBIRDS_EVAL_SPLIT, WATERBIRDS_REFERENCE_SPLIT = "test", "val"


def section(config: dict, name: str) -> dict:
    """An optional top-level section (segmentation, zeroshot, faithfulness, similarity), empty when absent."""
    return config.get(name) or {key: type(value)() for key, value in _SECTION_DEFAULTS[name].items()}


def regex_of(names) -> str:
    """A wildcard regex matching exactly ``names`` (nothing if there are none)."""
    names = [re.escape(name) for name in names]
    return "|".join(names) if names else "(?!)"


def datasets_of_kinds(config: dict, kinds) -> list[str]:
    return [name for name, spec in config["datasets"].items() if spec["kind"] in kinds]


def models_of_kind(config: dict, kind: str) -> list[str]:
    return [name for name, spec in config["models"].items() if spec["kind"] == kind]


def data_split(config: dict, dataset: str) -> str:
    return config["datasets"][dataset].get("split", "val")


def shards(config: dict, dataset: str) -> range:
    return range(config["datasets"][dataset]["shards"])


# ---- what jobs read ----
def dataset_inputs(config: dict, dataset: str, split: str | None = None) -> list[str]:
    """Every file a grounding job reading ``dataset`` depends on (annotations, stamps of extracted image folders)."""
    kind = config["datasets"][dataset]["kind"]
    split = split or data_split(config, dataset)
    if KINDS[kind].format != "coco-png":
        return [paths.png_json(dataset, split)]
    return needed_files(kind, paths.dataset_root(dataset), split)


def kind_inputs(config: dict, dataset: str) -> list[str]:
    """The files its kind needs under the data set's folder (the user's ImageNet has none: the job checks it)."""
    return needed_files(config["datasets"][dataset]["kind"], paths.dataset_root(dataset), data_split(config, dataset))


def data_root(config: dict, dataset: str) -> str:
    """The folder the `clipxai` verbs read a data set from: the user's copy, the unpacked archive's folder, or the
    data set's own folder."""
    spec = config["datasets"][dataset]
    kind = KINDS[spec["kind"]]
    if kind.user_path:
        return spec["path"]
    if kind.archive_root:
        return f"{paths.dataset_root(dataset)}/{kind.archive_root}"
    return paths.dataset_root(dataset)


def heads_data_args(config: dict, dataset: str) -> str:
    """`--data ... --format ...` (and ImageNet's devkit) of the verbs that open a data set."""
    spec = config["datasets"][dataset]
    args = f"--data {shlex.quote(data_root(config, dataset))} --format {KINDS[spec['kind']].format}"
    if spec.get("devkit"):
        args += f" --devkit {shlex.quote(spec['devkit'])}"
    return args


def imagenet_root(config: dict, dataset: str) -> str:
    spec = config["datasets"][dataset]
    return spec["path"] if KINDS[spec["kind"]].user_path else paths.dataset_root(dataset)


def model_files(config: dict, model: str) -> list[str]:
    """What a model's jobs depend on: the trained toy weights, or the stamp of fetched open_clip weights."""
    if config["models"][model]["kind"] == "toy":
        return paths.toy_model_files(model)
    return [paths.weights_stamp(model)]


def model_args(config: dict, model: str) -> str:
    """The `--model ... --pretrained ...` arguments of every clipxai verb that loads a model."""
    spec = config["models"][model]
    if spec["kind"] == "toy":
        return f"--model {shlex.quote(paths.model_dir(model))}"
    # published weights: the file fetch-weights recorded in the stamp (verified on load), never a cache lookup
    return f"--model {shlex.quote(spec['name'])} --checkpoint {shlex.quote(model_files(config, model)[0])}"


def source_args(config: dict, name: str, prefix: str = "") -> str:
    """`--url URL` (and a mirror's own `--sha256/--md5/--size`, or `--no-checksum`) where config `sources:` names a
    lab mirror or a local copy of a download, else nothing (clipxai.data.sources.download_arguments); ``prefix``
    renames the options (`--tokenizer-url ...` of fetch-weights). Raises InputError on a bad entry."""
    from clipxai.data.sources import download_arguments

    args = download_arguments(name, config.get("sources", {}).get(name))
    return " ".join(shlex.quote(f"--{prefix}{a[2:]}" if a.startswith("--") else a) for a in args)


def weights_args(config: dict, model: str) -> str:
    """fetch-weights' `--pretrained TAG` (plus a `sources:` mirror of it) or `--checkpoint PATH` (config `checkpoint:`,
    which wins over a `pretrained` tag given with it). Raises InputError when the model names neither."""
    from clipxai.workflow.checks import ConfigMistake

    spec = config["models"][model]
    if spec.get("checkpoint"):
        # a local file wins; a `pretrained` tag beside it only names what the file stands for (a lab's copy)
        return f"--checkpoint {shlex.quote(spec['checkpoint'])}"
    if not spec.get("pretrained"):
        raise ConfigMistake(f"models.{model}", "expected `pretrained` (an open_clip tag or a catalogued checkpoint) "
                            "or `checkpoint` (a local file or model folder)")
    return f"--pretrained {shlex.quote(spec['pretrained'])} {source_args(config, spec['pretrained'])}".strip()


def weights_stamp_arg(config: dict, model: str) -> str:
    """Where fetch-weights put a published model's checkpoint (CLIPpy's clippy_5k is not an open_clip tag)."""
    return f"--weights-stamp {model_files(config, model)[0]}" if config["models"][model]["kind"] == "open_clip" else ""


# ---- grounding ----
def method_json(config: dict, method: str) -> str:
    """A method's registry name and parameters, passed to the CLI as one JSON argument."""
    name, params = method_specs(config)[method]
    return shlex.quote(json.dumps({"method": name, "params": params}, sort_keys=True))


def _label_options(options) -> str:
    return " ".join(f"--{option} {' '.join(shlex.quote(value) for value in values)}" for option, values in options)


def scoring_pairs(config: dict, dataset: str, model: str) -> str:
    """score-grounding's `--maps/--out/--summary LABEL=PATH` of every grounding method of (dataset, model)."""
    methods = method_specs(config)
    maps = [f"{m}={paths.maps_npz(dataset, model, m, s)}" for m in methods for s in shards(config, dataset)]
    out = [f"{m}={paths.grounding_scores(dataset, model, m)}" for m in methods]
    summary = [f"{m}={paths.grounding_summary(dataset, model, m)}" for m in methods]
    return _label_options((("maps", maps), ("out", out), ("summary", summary)))


def faithfulness_pairs(config: dict, dataset: str, model: str) -> str:
    """faithfulness' `--maps/--out LABEL=PATH` of every grounding method of (dataset, model)."""
    methods = method_specs(config)
    maps = [f"{m}={paths.maps_npz(dataset, model, m, s)}" for m in methods for s in shards(config, dataset)]
    out = [f"{m}={paths.faithfulness_entries(dataset, model, m)}" for m in methods]
    return _label_options((("maps", maps), ("out", out)))


def _grounding_triples(config: dict, datasets=None, models=None):
    grounding = config["grounding"]
    for d in grounding["datasets"] if datasets is None else datasets:
        for m in grounding["models"] if models is None else models:
            for method in method_specs(config):
                yield d, m, method


def all_summaries(config: dict) -> list[str]:
    return [paths.grounding_summary(*triple) for triple in _grounding_triples(config)]


def all_entry_scores(config: dict, datasets=None) -> list[str]:
    """Per-entry grounding scores of every (data set, model, method); only ``datasets`` if given."""
    return [paths.grounding_scores(*triple) for triple in _grounding_triples(config, datasets)]


def all_faithfulness_entries(config: dict) -> list[str]:
    models = section(config, "faithfulness").get("models", [])
    return [paths.faithfulness_entries(*triple) for triple in _grounding_triples(config, models=models)]


def faithfulness_random(config: dict) -> str:
    """The floor every method is compared with: the configured method whose registry name is `random`."""
    return next((m for m, (name, _) in method_specs(config).items() if name == "random"), "random")


def shapes_grounding_datasets(config: dict) -> list[str]:
    """Grounding data sets of the shapes world: their phrases name "<colour> <shape>" objects."""
    kinds = [name for name, kind in KINDS.items() if kind.shapes and kind.format == "coco-png"]
    return [d for d in config["grounding"]["datasets"] if config["datasets"][d]["kind"] in kinds]


def all_zeroshot(config: dict) -> list[str]:
    return [paths.zeroshot_csv(d, m) for d in shapes_grounding_datasets(config) for m in config["grounding"]["models"]]


def figure_methods(config: dict) -> list[str]:
    """The methods shown side by side in the qualitative figure (those configured, in config order)."""
    return [m for m, (name, _) in method_specs(config).items() if name != "random"]


# ---- the report ----
def saliency_models(config: dict) -> list[str]:
    """report.saliency_models; absent: the first grounding model; an empty list: no saliency figures."""
    return config.get("report", {}).get("saliency_models", config["grounding"]["models"][:1])


def _report_models(config: dict) -> list[str]:
    return list(dict.fromkeys(config["grounding"]["models"] + saliency_models(config)))


def report_checksummed_inputs(config: dict) -> list[str]:
    """The data and model files the report checksums: what every grounding data set and model job depended on."""
    files = []
    for d in config["grounding"]["datasets"]:
        files += dataset_inputs(config, d)
    for m in _report_models(config):
        files += model_files(config, m)
    return list(dict.fromkeys(files))


def report_checksummed_folders(config: dict) -> list[str]:
    """Data set and toy-model folders: every file in them is checksummed (open_clip weights: their stamp above)."""
    folders = [paths.dataset_root(d) for d in config["grounding"]["datasets"]]
    return folders + [paths.model_dir(m) for m in _report_models(config) if config["models"][m]["kind"] == "toy"]


class ReportItems:
    """The tables and figures the report shows, in declaration order: each rule file declares what it makes
    (declare_table / declare_figure return the path), the report job reads the lists once all are declared."""

    def __init__(self):
        self.tables: list[str] = []
        self.figures: list[str] = []

    def declare_table(self, name: str) -> str:
        path = paths.table_path(name)
        if path not in self.tables:
            self.tables.append(path)
        return path

    def declare_figure(self, name: str) -> str:
        path = paths.figure_path(name)
        if path not in self.figures:
            self.figures.append(path)
        return path

    def sidecars(self) -> list[str]:
        return [paths.sidecar(p) for p in self.tables + self.figures]


# ---- dense segmentation (VOC) and zero-shot classification ----
def voc_inputs(config: dict, dataset: str) -> list[str]:
    """What a job reading a VOC-format data set depends on: the download stamp, or the generated split list."""
    return kind_inputs(config, dataset)


def voc_split_images(config: dict, dataset: str) -> int:
    """The real VOC2012 list's image count for `--split-images` (a smaller copy is partial); 0 (the copy's own list)
    for a VOC-format data set of another kind, such as the shapes world's."""
    from clipxai.data.voc import VOC2012_SPLIT_IMAGES

    spec = config["datasets"][dataset]
    return VOC2012_SPLIT_IMAGES.get(data_split(config, dataset), 0) if is_real(spec["kind"]) else 0


def is_clippy_release(config: dict, model: str) -> bool:
    spec = config["models"][model]
    return (spec.get("name"), spec.get("pretrained")) == CLIPPY_SPEC


def segmentation_published_args(config: dict) -> str:
    """The published CLIPpy numbers each real-VOC row is tied to."""
    spec, args = section(config, "segmentation"), []
    for d in spec["datasets"]:
        if not is_real(config["datasets"][d]["kind"]):
            continue
        for m in spec["models"]:
            if is_clippy_release(config, m):
                args += [f"--published-miou {d}:{m}=clippy.voc_miou", f"--published-ji {d}:{m}=clippy.voc_ji"]
    return " ".join(args)


def zeroshot_published_args(config: dict, known) -> str:
    """The published numbers (ids in ``known``: reported.yaml's `published`) each real-ImageNet row is tied to."""
    spec, args = section(config, "zeroshot"), []
    for d in spec["datasets"]:
        if not is_real(config["datasets"][d]["kind"]):
            continue
        for m in spec["models"]:
            model = config["models"][m]
            if is_clippy_release(config, m):
                key = "clippy.imagenet_zeroshot_top1"
            else:
                key = f"open_clip.imagenet1k.{model.get('name')}.{model.get('pretrained')}"
            if key in known:
                args.append(f"--published {d}:{m}={key}")
    return " ".join(args)


def zeroshot_data_args(config: dict, dataset: str) -> str:
    """Class names, templates and the completeness check of a zero-shot data set, by kind."""
    spec = config["datasets"][dataset]
    if is_real(spec["kind"]):
        devkit = f" --devkit {shlex.quote(spec['devkit'])}" if spec.get("devkit") else ""
        expect = spec.get("expect_images", 50000)
        return (
            f"--classnames imagenet --templates openai --max-templates {config.get('max_templates', 0)}"
            f" --verify --expect-images {expect}{devkit}"
        )
    return (
        f"--classnames dataset --templates given --template 'a {{}}' --verify --expect-images {spec['n_val']}"
        f" --expect-classes {min(spec['n_val'], 30)} --no-require-wnids"
    )


def segmentation_pairs(config: dict) -> list[tuple[str, str]]:
    spec = section(config, "segmentation")
    return [(d, m) for d in spec["datasets"] for m in spec["models"]]


def segmentation_targets(config: dict) -> list[str]:
    """Everything rules/segmentation.smk makes for the `all` target: the tables, their sidecars and the figures."""
    targets, zeroshot = [], section(config, "zeroshot")
    if segmentation_pairs(config):
        targets += [paths.table_path("segmentation_voc"), "results/tables/segmentation_voc.md"]
        targets += [paths.segmentation_class_table(d) for d in section(config, "segmentation")["datasets"]]
        targets += [paths.segmentation_figure(d, m) for d, m in segmentation_pairs(config)]
    if zeroshot["datasets"] and zeroshot["models"]:
        targets += [paths.table_path("zeroshot_classification"), "results/tables/zeroshot_classification.md"]
    return targets


# ---- heads ----
def heads_section(config: dict, name: str) -> dict:
    return (config.get("heads") or {}).get(name) or {}


def neighbours_algorithm(config: dict) -> str | None:
    """The textspan algorithm whose table names the neighbour figure's head (default: the first textspan one)."""
    chosen = heads_section(config, "neighbours").get("algorithm")
    if chosen:
        return chosen
    algorithms = config["heads"]["explain"]["algorithms"]
    return next((label for label, spec in algorithms.items() if spec["algorithm"] == "textspan"), None)


def segmentation_methods(config: dict) -> dict[str, tuple[str, dict]]:
    """heads.segmentation.methods: label -> (registry name or "decomposition", parameters), in config order."""
    specs = {}
    for label, params in (heads_section(config, "segmentation").get("methods") or {}).items():
        params = dict(params or {})
        specs[label] = (params.pop("method", label), params)
    return specs


def segmentation_method_json(config: dict, label: str) -> str:
    name, params = segmentation_methods(config)[label]
    return shlex.quote(json.dumps({"method": name, "params": params}, sort_keys=True))


def text_pools_with(config: dict, key: str) -> list[str]:
    """The text pools given by ``key`` (source: downloaded, generate: generated)."""
    return [pool for pool, spec in heads_section(config, "text_pools").items() if key in spec]


def _heads_models(config: dict) -> list[str]:
    return (config.get("heads") or {}).get("models", [])


def heads_explained(config: dict) -> list[tuple[str, str, str]]:
    """(data set, model, algorithm label) of every head explanation."""
    heads = config.get("heads")
    if not heads:
        return []
    explain = heads["explain"]
    return [(d, m, a) for d in explain["datasets"] for m in heads["models"] for a in explain["algorithms"]]


def segmentation_pairs_heads(config: dict) -> list[tuple[str, str]]:
    if not config.get("heads") or not segmentation_methods(config):
        return []
    datasets = heads_section(config, "segmentation").get("datasets", [])
    return [(d, m) for d in datasets for m in config["heads"]["models"]]


def waterbirds_pairs(config: dict) -> list[tuple[str, str]]:
    return [(d, m) for d in heads_section(config, "waterbirds").get("datasets", []) for m in _heads_models(config)]


def neighbours_pairs(config: dict) -> list[tuple[str, str]]:
    return [(d, m) for d in heads_section(config, "neighbours").get("datasets", []) for m in _heads_models(config)]


def heads_targets(config: dict) -> list[str]:
    """Everything rules/heads.smk makes for the `all` target: the tables (CSV, Markdown, sidecar) and the figures."""
    targets = []
    names = (
        (["heads_texts", "heads_accuracy"] if heads_explained(config) else [])
        + (["imagenet_segmentation"] if segmentation_pairs_heads(config) else [])
        + (["waterbirds_heads"] if waterbirds_pairs(config) else [])
    )
    for name in names:
        table = paths.table_path(name)
        targets += [table, paths.sidecar(table), paths.markdown_of(table)]
    for d, m in neighbours_pairs(config):
        figure = paths.neighbours_figure(d, m)
        targets += [figure, paths.sidecar(figure)]
    return targets


# ---- similarity ----
def all_similarity(config: dict) -> list[str]:
    spec = section(config, "similarity")
    return [paths.similarity_npz(s, m) for s in spec.get("studies", {}) for m in spec.get("models", [])]


def similarity_inputs(config: dict, study: str, model: str) -> list[str]:
    """The workflow's files a study reads: a shapes study's data set (ArtEmis / AffectNet are the user's, checked
    by the job itself) and the model."""
    spec = config["similarity"]["studies"][study]
    data = kind_inputs(config, spec["dataset"]) if spec["kind"] == "shapes" else []
    return data + model_files(config, model)


def similarity_spec(config: dict, study: str) -> str:
    """The study as the verb's --spec JSON: its kind, data paths and prompt template."""
    spec = dict(config["similarity"]["studies"][study])
    if spec["kind"] == "shapes":
        spec["data"] = paths.dataset_root(spec.pop("dataset"))
    return shlex.quote(json.dumps(spec, sort_keys=True))
