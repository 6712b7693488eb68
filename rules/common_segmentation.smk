# Helpers of rules/segmentation.smk: its configuration checks and paths, the published numbers each table is tied
# to, and what it makes for the `all` target.

SEGMENTATION = config.get("segmentation") or {"datasets": [], "models": []}
ZEROSHOT = config.get("zeroshot") or {"datasets": [], "models": []}
CLIPPY_SPEC = ("clippy-B-16", "clippy_5k")  # (open_clip name, checkpoint) of the published CLIPpy numbers

for _section, _kinds in (("segmentation", ("voc", "shapes-voc")), ("zeroshot", ("imagenet", "shapes-imagenet"))):
    _spec = SEGMENTATION if _section == "segmentation" else ZEROSHOT
    for _d in _spec["datasets"]:
        if _d not in DATASETS or DATASETS[_d]["kind"] not in _kinds:
            raise WorkflowError(
                f"invalid configuration: {_section}.datasets: {_d!r} is not a data set of kind "
                f"{' or '.join(_kinds)}"
            )
    for _m in _spec["models"]:
        if _m not in MODELS:
            raise WorkflowError(f"invalid configuration: {_section}.models: {_m!r} is not a model under models")
for _d, _spec in DATASETS.items():
    if _spec["kind"] == "imagenet" and not _spec.get("path"):
        raise WorkflowError(
            f"invalid configuration: datasets.{_d}.path: the folder of your own ImageNet validation "
            "set (licence-bound: it is checked, never downloaded)"
        )


# ---- paths (declared once) ----
def voc_list(dataset, split):
    return f"{dataset_root(dataset)}/VOCdevkit/VOC2012/ImageSets/Segmentation/{split}.txt"


def voc_stamp(dataset):
    return f"{dataset_root(dataset)}/.voc2012_trainval.json"


def voc_inputs(dataset):
    """What a job reading a VOC-format data set depends on: the download stamp, or the generated split list."""
    if DATASETS[dataset]["kind"] == "voc":
        return [voc_stamp(dataset)]
    return [voc_list(dataset, DATASETS[dataset].get("split", "val"))]


def imagenet_root(dataset):
    spec = DATASETS[dataset]
    return spec["path"] if spec["kind"] == "imagenet" else dataset_root(dataset)


def imagenet_inputs(dataset):
    """The generated class-name list of a shapes set; nothing for the user's ImageNet (checked by the job)."""
    return [f"{dataset_root(dataset)}/classnames.txt"] if DATASETS[dataset]["kind"] == "shapes-imagenet" else []


def segmentation_result(dataset, model, name):
    return f"results/{dataset}/{model}/segmentation/{name}"


def segmentation_figure(dataset, model):
    return figure_path(f"segmentation_examples_{dataset}_{model}")


def zeroshot_result(dataset, model, name):
    return f"results/{dataset}/{model}/zeroshot/{name}"


def weights_stamp_arg(model):
    """Where fetch-weights put a published model's checkpoint (CLIPpy's clippy_5k is not an open_clip tag)."""
    return f"--weights-stamp {model_files(model)[0]}" if MODELS[model]["kind"] == "open_clip" else ""


def is_clippy_release(model):
    spec = MODELS[model]
    return (spec.get("name"), spec.get("pretrained")) == CLIPPY_SPEC


def _published_ids():
    """Ids under `published` in src/clipxai/report/reported.yaml (a run is tied to a published number only if it is
    there)."""
    import yaml

    with open(workflow.source_path("../src/clipxai/report/reported.yaml")) as fh:
        return set((yaml.safe_load(fh) or {}).get("published") or {})


def segmentation_published_args():
    args = []
    for d in SEGMENTATION["datasets"]:
        if DATASETS[d]["kind"] != "voc":
            continue
        for m in SEGMENTATION["models"]:
            if is_clippy_release(m):
                args += [f"--published-miou {d}:{m}=clippy.voc_miou", f"--published-ji {d}:{m}=clippy.voc_ji"]
    return " ".join(args)


def zeroshot_published_args():
    known, args = _published_ids(), []
    for d in ZEROSHOT["datasets"]:
        if DATASETS[d]["kind"] != "imagenet":
            continue
        for m in ZEROSHOT["models"]:
            spec = MODELS[m]
            if is_clippy_release(m):
                key = "clippy.imagenet_zeroshot_top1"
            else:
                key = f"open_clip.imagenet1k.{spec.get('name')}.{spec.get('pretrained')}"
            if key in known:
                args.append(f"--published {d}:{m}={key}")
    return " ".join(args)


def zeroshot_data_args(dataset):
    """Class names, templates and the completeness check of a zero-shot data set, by kind."""
    spec = DATASETS[dataset]
    if spec["kind"] == "imagenet":
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


def voc_split_images(dataset):
    """The real VOC2012 list's image count for `--split-images` (a smaller copy is partial); 0 (the copy's own list)
    for a VOC-format data set of another kind, such as the shapes world's."""
    from clipxai.data.voc import VOC2012_SPLIT_IMAGES

    spec = DATASETS[dataset]
    return VOC2012_SPLIT_IMAGES.get(spec.get("split", "val"), 0) if spec["kind"] == "voc" else 0


def segmentation_pairs():
    return [(d, m) for d in SEGMENTATION["datasets"] for m in SEGMENTATION["models"]]


def segmentation_class_table(dataset):
    return table_path(f"segmentation_voc_classes_{dataset}")


def segmentation_targets():
    """Everything rules/segmentation.smk makes for the `all` target: the tables, their sidecars and the figures."""
    targets = []
    if segmentation_pairs():
        targets += [table_path("segmentation_voc"), "results/tables/segmentation_voc.md"]
        targets += [segmentation_class_table(d) for d in SEGMENTATION["datasets"]]
        targets += [segmentation_figure(d, m) for d, m in segmentation_pairs()]
    if ZEROSHOT["datasets"] and ZEROSHOT["models"]:
        targets += [table_path("zeroshot_classification"), "results/tables/zeroshot_classification.md"]
    return targets
