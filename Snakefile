# clipxai: reproduce, check and extend published results on how CLIP models ground language in images.
# The embedded default (config.yaml) runs here on a CPU in minutes; config/paper.yaml is the full reproduction.
# Every rule is thin: it calls the `clipxai` command (src/clipxai), logs to logs/ and times itself to benchmarks/.

from snakemake.utils import min_version

min_version("9.0")


# The embedded default unless --configfile is given (Snakemake would otherwise deep-merge config.yaml into it).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/attribute.smk"
include: "rules/score.smk"
include: "rules/report.smk"
include: "rules/segmentation.smk"
include: "rules/heads.smk"


rule all:
    input:
        report_dir(),
        segmentation_targets(),
        heads_targets(),
    default_target: True
