"""MLflow's system metrics (system/*) for a journaled run.

MLflow's own monitor asks the server for the run's status before every sample and stops for good the first
time the server does not answer. This one samples with MLflow's collectors on a fixed interval and logs
through MLflow's batch logger (hence through the run's journal), whatever the server does; it stops when told.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def start(run_id: str, interval_s: float, resume: bool = False) -> Any:
    """Sample every `interval_s`; a resumed run's steps continue after its last sample."""
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    class JournaledMonitor(SystemMetricsMonitor):
        def monitor(self) -> None:
            while not self._shutdown_event.is_set():
                self.collect_metrics()
                if self._shutdown_event.wait(self.sampling_interval):
                    return
                self.publish_metrics(self.aggregate_metrics())

    monitor = JournaledMonitor(run_id, sampling_interval=interval_s, samples_before_logging=1, resume_logging=resume)
    monitor.start()
    return monitor


def stop(monitor: Any) -> None:
    """Stop sampling and log one last sample (the state at the end of the work: a run shorter than one interval
    still gets one)."""
    try:
        monitor._shutdown_event.set()
        if monitor._process is not None:
            monitor._process.join(timeout=10)
        monitor.collect_metrics()
        monitor.publish_metrics(monitor.aggregate_metrics())
        monitor.mlflow_logger.flush()
    except Exception as err:  # never fail the work over a last sample
        log.debug("no last system-metrics sample: %s", err)
