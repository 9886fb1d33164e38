"""Beyond one box: the schedulers teams already have (SLURM through submitit, Ray through Hydra's Ray launcher).
Datasets every box can reach (S3) live in gfcore.data.s3; pipeline steps as SLURM jobs in
gfcore.orchestration.slurm_steps.

- slurm: the jobs of a SLURM sweep watched until each returns, ends another way (scancel, limits) or can never
  start; used by the `guardianflow_slurm` Hydra launcher (hydra_plugins/guardianflow_launchers/slurm.py), which
  `launcher=submitit_slurm` selects. The preset sizes the request (a GPU only for a CUDA device, through the
  `gf_gpus` resolver) and each job's run records its SLURM job (gfcore.tracking.run.scheduler_tags).

docs/cluster.md is the user's guide.
"""
