"""Turning the fleet's records into decisions: alert rules over the registry and the runs, challenger vs champion
measured side by side, and automatic improvement (sweep, quantize, retrain, promote) behind cooldowns.

Every evaluation and every action is an MLflow run with its evidence (experiments `guardianflow/alerts` and
`guardianflow/automation`); deduplication and cooldown state live in MLflow tags, never in a local file, so two
machines running the same cron job agree.

- challenge: the candidate and the champion measured on the same data and machine in one run, and its verdict;
- rules, alerts: alert rules (conf/alerts) over the fleet summary, each evaluation a run, `--notify` for changes;
- webhook: signed JSON notifications (`X-GuardianFlow-Signature: sha256=<HMAC-SHA256 of the body>`), bounded
  retries with backoff, a clear error when the receiver refuses;
- facts: what rules and triggers read beyond the summary (version tags, previous champions, data hashes, sites);
- optimize, launcher: triggers (conf/automation) and their actions as `mlflow run` of this project, with cooldowns.

docs/automation.md is the user's guide.
"""
