"""The fleet view: every site's models and figures over time, straight from MLflow.

MLflow is the store; nothing here keeps a copy. The queries (`gfcore.fleet.queries`) read any tracking store,
the embedded sqlite file or the server stack, with server-side filters, paging and only the runs they need:

- `summary`: one row per site model (registered model `{customer}.{region}-{plant}.{zone}.{task}`): its champion
  and how long it has been champion, the champion's figures on its evaluation split (with its run's figures at the
  operating confidence and per class: gfcore.fleet.figures), the deployed variant's batch-1 latency, tracking
  figures where an infer run measured them, the candidate waiting and whether its figures share the champion's
  basis (`eval.split`, `eval.dataset_digest`), and the runs and failed runs of the last N days. Sites with runs but
  no registered model have a row too; the data each champion was trained on and a newer pushed version
  (gfcore.fleet.data_versions); with `--tag K=V`, only what carries the scenario's tags (gfcore.fleet.tagged).
- `trend` (`gfcore.fleet.trends`): one metric over time per site, from the runs that produced it (by end time),
  per day or week.
- `compare` (`gfcore.fleet.trends`): a metric grouped by architecture, backend, site or task: mean, best and count.
- `experiments` (`gfcore.fleet.experiments`): the site experiments with their runs, newest run and models.
- `export` (`gfcore.fleet.export`): one row per run for BI tools (Parquet or CSV), optionally the per-step
  histories as a long table.

`guardianflow metrics summary|trend|compare|export` (gfcore/cli/metrics.py) prints them, or JSON with --json.
"""
