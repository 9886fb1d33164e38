"""`hydra/launcher=guardianflow_slurm` (what `launcher=submitit_slurm` selects): Hydra's submitit SLURM launcher,
with the waiting done by gfcore.cluster.slurm instead of submitit's `sacct` polling. So a request no node meets
fails the sweep in `impossible_after_s` with one clear error instead of hanging, a job that scancel or the
scheduler ends closes its child run (KILLED or FAILED) while the sweep goes on, and stopping the sweep
(SIGTERM, Ctrl-C) cancels its jobs. It lives in `hydra_plugins` because Hydra only loads launchers from there."""

# No `from __future__ import annotations`: Hydra loads plugin modules outside sys.modules, where a dataclass
# with string annotations cannot resolve them.
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import OmegaConf

from gfcore.cluster import slurm
from gfcore.cluster.slurm import KILLED_STATES
from gfcore.core.vocabulary import SLURM_STATE
from gfcore.orchestration.sweep import SweepAborted, close_job
from gfcore.tracking.run import PARENT_ENV


@dataclass
class WatchedSlurmQueueConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.guardianflow_launchers.slurm.WatchedSlurmLauncher"
    impossible_after_s: float = 30.0  # PENDING this long for a reason no waiting clears: the sweep fails
    poll_s: float = 2.0  # how often squeue is asked


ConfigStore.instance().store(group="hydra/launcher", name="guardianflow_slurm", node=WatchedSlurmQueueConf,
                             provider="guardianflow")


class WatchedSlurmLauncher(SlurmLauncher):
    def __init__(self, impossible_after_s: float = 30.0, poll_s: float = 2.0, **params: Any) -> None:
        self.impossible_after_s, self.poll_s = float(impossible_after_s), float(poll_s)
        super().__init__(**params)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """As BaseSubmititLauncher.launch, but the jobs are watched (gfcore.cluster.slurm.watch), and a job that
        ended without a result returns NaN to the sweeper, as a job that failed in Python does."""
        import submitit
        from hydra.core.singleton import Singleton
        from submitit.core.utils import FailedJobError

        assert self.config is not None
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, folder=self.params["submitit_folder"],
                                         **({"slurm_max_num_timeout": self.params["max_num_timeout"]}
                                            if "max_num_timeout" in self.params else {}))
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in self.params.items()
                                      if k not in ("submitit_folder", "max_num_timeout")})
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        nums = [initial_job_idx + i for i in range(len(job_overrides))]
        args = [(list(o), "hydra.sweep.dir", n, f"job_id_for_{n}", Singleton.get_state())
                for o, n in zip(job_overrides, nums)]
        request = slurm.describe(self.params)
        try:
            jobs = executor.map_array(self, *zip(*args))
        except FailedJobError as exc:
            err = slurm.refused(exc, request)
            raise SweepAborted(str(err)) from err
        ids = [j.job_id for j in jobs]
        for n, job, overrides in zip(nums, jobs, job_overrides):
            print(f"SLURM job {job.job_id}: #{n} {' '.join(filter_overrides(overrides))}", flush=True)
        try:  # SIGTERM or Ctrl-C to the sweep: its jobs go too (their runs end KILLED)
            with slurm.cancelled_when_stopped(ids):
                outcomes = slurm.watch(jobs, request, self.impossible_after_s, self.poll_s)
        except slurm.ClusterError as err:
            raise SweepAborted(str(err)) from err
        return [o.result if not o.lost else self._lost(o, n, list(ov))
                for o, n, ov in zip(outcomes, nums, job_overrides)]

    def _lost(self, outcome: Any, num: int, overrides: list[str]) -> JobReturn:
        """A job SLURM ended before it returned: its run is closed with SLURM's state and the job's last error
        lines, and the sweeper gets NaN for it."""
        status = "KILLED" if outcome.state.split()[0] in KILLED_STATES else "FAILED"
        reason = f"SLURM job {outcome.job_id} ended {outcome.state} before its run did"
        if outcome.error:
            reason += f"; its last error output:\n{outcome.error}"
        parent = os.environ.get(PARENT_ENV)
        if parent:
            close_job(parent, num, overrides, status, reason, tags={SLURM_STATE: outcome.state.split()[0]})
        print(f"SLURM job {outcome.job_id} (#{num}) ended {outcome.state}: its run is {status}; the sweep goes on",
              flush=True)
        return JobReturn(overrides=overrides, status=JobStatus.COMPLETED, _return_value=math.nan,
                         task_name=self.config.hydra.job.name if self.config else None)
