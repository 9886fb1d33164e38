"""Beyond one box: datasets every box can reach (S3), and, as they arrive, the schedulers teams already have
(SLURM through submitit, Ray through Hydra's Ray launcher).

- s3data: `data.path=s3://BUCKET/PREFIX/data.yaml` downloaded once per content into the cache and recorded in
  lineage with its S3 URI; `guardianflow data push` uploads a YOLO dataset.
"""
