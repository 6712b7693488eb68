# Helpers of rules/segmentation.smk: what it reads, the published numbers each table is tied to, and what it makes
# for the `all` target (its config is checked by clipxai.workflow.checks).

from clipxai.workflow.paths import (
    segmentation_class_table,
    segmentation_figure,
    segmentation_result,
    voc_list,
    voc_stamp,
    zeroshot_result,
)

SEGMENTATION = plan.section(config, "segmentation")
ZEROSHOT = plan.section(config, "zeroshot")


def voc_inputs(dataset):
    """What a job reading a VOC-format data set depends on: the download stamp, or the generated split list."""
    return plan.voc_inputs(config, dataset)


def imagenet_root(dataset):
    return plan.imagenet_root(config, dataset)


def imagenet_inputs(dataset):
    """The generated class-name list of a shapes set; nothing for the user's ImageNet (checked by the job)."""
    return plan.kind_inputs(config, dataset)


def weights_stamp_arg(model):
    return plan.weights_stamp_arg(config, model)


def _published_ids():
    """Ids under `published` in src/clipxai/report/reported.yaml (a run is tied to a published number only if it is
    there)."""
    import yaml

    with open(workflow.source_path("../src/clipxai/report/reported.yaml")) as fh:
        return set((yaml.safe_load(fh) or {}).get("published") or {})


def segmentation_published_args():
    return plan.segmentation_published_args(config)


def zeroshot_published_args():
    return plan.zeroshot_published_args(config, _published_ids())


def zeroshot_data_args(dataset):
    """Class names, templates and the completeness check of a zero-shot data set, by kind."""
    return plan.zeroshot_data_args(config, dataset)


def voc_split_images(dataset):
    return plan.voc_split_images(config, dataset)


def segmentation_pairs():
    return plan.segmentation_pairs(config)


def segmentation_targets():
    """Everything rules/segmentation.smk makes for the `all` target: the tables, their sidecars and the figures."""
    return plan.segmentation_targets(config)
