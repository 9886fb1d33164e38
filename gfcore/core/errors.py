"""GuardianFlow's error hierarchy: each message says what was wrong and what to do about it."""


class GuardianFlowError(Exception):
    """Base class: an expected failure with a message meant for the user, printed without a traceback."""

    exit_code = 2


class ConfigError(GuardianFlowError):
    """A composed configuration that cannot work (names MLflow would reject, unknown Ultralytics keys ...)."""


class DataError(GuardianFlowError):
    """A dataset that is missing, empty or does not match the task."""


class ModelError(GuardianFlowError):
    """A model that cannot be built or loaded (for example pretrained weights that are not on disk)."""


class TrackingError(GuardianFlowError):
    """The MLflow tracking store cannot be reached or refuses what GuardianFlow sends."""


class TrainingError(GuardianFlowError):
    """Training failed in a way GuardianFlow recognises (for example out of memory at the smallest batch)."""


class ResumeError(GuardianFlowError):
    """A run that cannot be resumed: finished, not a train run, still running, its checkpoint gone, or asked to
    continue with a config that differs from the one it logged. Nothing about the run was changed."""


class RegistryError(GuardianFlowError):
    """A registry request that cannot be done: unknown model or version, no candidate, a failing gate ..."""


class StepError(GuardianFlowError):
    """A child run of a pipeline or comparison failed; the steps before it are kept (and reused on a rerun)."""


class NotifyError(GuardianFlowError):
    """A notification receiver that cannot be reached or refuses what GuardianFlow sends."""


class ClusterError(GuardianFlowError):
    """A scheduler that refuses or can never start a job (a request no node meets), or a cluster out of reach."""
