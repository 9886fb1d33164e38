"""`hydra/launcher=guardianflow_ray` (what `launcher=ray` selects): each job of a sweep a Ray task, through
Hydra's Ray launcher (`pip install "guardianflow[ray]"`), on a local Ray started for the sweep or on an existing
cluster (`hydra.launcher.address=HOST:PORT`). The jobs' environment (tracking URI and credentials, the parent
run id, caches, Ultralytics settings) goes to the workers through Ray's runtime_env, so children nest on a
cluster too. This module imports without Ray: Hydra loads every plugin module at start-up."""

# No `from __future__ import annotations`: Hydra loads plugin modules outside sys.modules, where a dataclass
# with string annotations cannot resolve them.
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf, open_dict

from gfcore.cluster import ray_jobs
from gfcore.config.schema import gpus_of_device
from gfcore.core import interrupts
from gfcore.core.errors import ClusterError
from gfcore.orchestration.sweep import SweepAborted, close_job
from gfcore.tracking.run import PARENT_ENV


@dataclass
class RayJobsConf:
    _target_: str = "hydra_plugins.guardianflow_launchers.ray_launcher.RayJobsLauncher"
    address: Optional[str] = None  # an existing cluster (`ray start --head`): HOST:PORT or auto; null: a local Ray
    num_cpus: float = 1.0  # per job
    num_gpus: Optional[float] = None  # per job; null: one per CUDA device of backend.device
    init: Dict[str, Any] = field(default_factory=dict)  # more ray.init arguments
    remote: Dict[str, Any] = field(default_factory=dict)  # more ray.remote options
    env_prefixes: Optional[List[str]] = None  # what reaches the workers; null: gfcore.cluster.ray_jobs.ENV_PREFIXES


ConfigStore.instance().store(group="hydra/launcher", name="guardianflow_ray", node=RayJobsConf,
                             provider="guardianflow")


class RayJobsLauncher(Launcher):
    def __init__(self, address: Optional[str] = None, num_cpus: float = 1.0, num_gpus: Optional[float] = None,
                 init: Any = None, remote: Any = None, env_prefixes: Any = None) -> None:
        self.address, self.num_cpus, self.num_gpus = address, num_cpus, num_gpus
        self.init = _plain(init)
        self.remote = _plain(remote)
        self.env_prefixes = list(env_prefixes) if env_prefixes else None
        self.config: Optional[DictConfig] = None
        self.hydra_context: Any = None
        self.task_function: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """As Hydra's RayLauncher, with ray.init from gfcore.cluster.ray_jobs, an absolute sweep folder (a
        worker's working directory is not this one) and the jobs cancelled when the sweep is stopped."""
        try:
            import ray
            from hydra.core.singleton import Singleton
            from hydra_plugins.hydra_ray_launcher._launcher_util import launch_job_on_ray
        except ImportError as exc:
            err = ClusterError(f"launcher=ray needs Ray and Hydra's Ray launcher ({exc}): "
                               'pip install "guardianflow[ray]" (or pip install -e ".[ray]" in a checkout).')
            raise SweepAborted(str(err)) from err
        assert self.config is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir)).resolve()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if not ray.is_initialized():
            args = ray_jobs.init_args(self.address, self.init, ray_jobs.worker_env(self.env_prefixes))
            if self.address:
                ray_jobs.use_token_if_present()
            try:
                ray.init(**args)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
                err = ClusterError(f"could not start or reach {where}: {exc}. Start one with `ray start --head` "
                                   "and pass its address (hydra.launcher.address=HOST:PORT), or leave the address "
                                   "out for a local Ray.")
                raise SweepAborted(str(err)) from err
        gpus = self.num_gpus if self.num_gpus is not None else gpus_of_device(str(self.config.backend.device))
        remote = {"num_cpus": self.num_cpus, "num_gpus": gpus, "max_retries": 0, **self.remote}
        refs = []
        # SIGTERM, Ctrl-C or an error: the jobs stop too (their runs are then ended KILLED).
        with interrupts.on_stop(lambda: _cancel(ray, refs)):
            for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
                sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
                with open_dict(sweep_config):
                    sweep_config.hydra.job.id = f"job_id_for_{idx}"
                    sweep_config.hydra.job.num = idx
                    sweep_config.hydra.sweep.dir = str(sweep_dir)
                refs.append(launch_job_on_ray(self.hydra_context, OmegaConf.create(remote), sweep_config,
                                              self.task_function, Singleton.get_state()))
                print(f"Ray job #{idx}: {' '.join(overrides)}", flush=True)
            return [self._returned(ray, ref, n, list(o))
                    for n, (ref, o) in enumerate(zip(refs, job_overrides), start=initial_job_idx)]

    def _returned(self, ray: Any, ref: Any, num: int, overrides: List[str]) -> JobReturn:
        """The job's return; a task Ray lost (its worker died) ends its run FAILED and is NaN to the sweeper, as
        a job that failed in Python is."""
        from hydra.core.utils import JobStatus
        from ray.exceptions import RayError

        try:
            return ray.get(ref)
        except RayError as exc:
            reason = f"Ray lost job #{num}: {str(exc).strip().splitlines()[0]}"
            print(f"{reason}; the sweep goes on", flush=True)
            if os.environ.get(PARENT_ENV):
                close_job(os.environ[PARENT_ENV], num, overrides, "FAILED", reason)
            return JobReturn(overrides=overrides, status=JobStatus.COMPLETED, _return_value=math.nan)


def _cancel(ray: Any, refs: List[Any]) -> None:
    for ref in refs:
        try:
            ray.cancel(ref, force=True)
        except Exception:  # noqa: BLE001  already finished or gone
            pass


def _plain(value: Any) -> Dict[str, Any]:
    if value is None:
        return {}
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else dict(value)
