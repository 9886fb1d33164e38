"""Beyond one box: datasets every box can reach (S3), and, as they arrive, the schedulers teams already have
(SLURM through submitit, Ray through Hydra's Ray launcher).

- s3data: `data.path=s3://BUCKET/PREFIX/data.yaml` downloaded once per content into the cache and recorded in
  lineage with its S3 URI; `guardianflow data push` uploads a YOLO dataset.

SLURM sweeps need no code of their own: `conf/launcher/submitit_slurm.yaml` sizes the request (a GPU only for a
CUDA device, through the `gf_gpus` resolver), and each job's run records its SLURM job
(gfcore.tracking.run.scheduler_tags). docs/cluster.md is the user's guide.
"""
