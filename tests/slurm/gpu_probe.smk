# One GPU job through the real profiles, recording what its job step sees: `device: auto` finds the GPU SLURM
# gave a job through CUDA_VISIBLE_DEVICES, so that variable must reach the step that runs the command
# (tests/test_slurm.py runs this beside the workflow).


rule probe:
    output:
        "gpu_probe.txt",
    resources:
        gpu=1,
        mem_mb=100,
        runtime=5,
    shell:
        "echo CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES-unset}} > {output}"
