"""The registry's client helpers that every workflow over it shares: a checked client, a model or version that
must exist (with the ones that do in the error), and a model's aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gfcore.core import suggest
from gfcore.core.errors import RegistryError
from gfcore.tracking.server import check_tracking_store


def mlflow_client() -> Any:
    import mlflow

    check_tracking_store()
    return mlflow.MlflowClient()


def all_registered_models(client: Any) -> Iterator[Any]:
    token = None
    while True:
        page = client.search_registered_models(max_results=200, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def require_model(client: Any, name: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException:
        known = sorted(rm.name for rm in all_registered_models(client))
        if not known:
            raise RegistryError(f"no registered model named {name!r}: no model is registered yet.") from None
        listed = f": {', '.join(known)}" if len(known) <= 10 else ""
        raise RegistryError(f"no registered model named {name!r}{suggest.did_you_mean(name, known)}; "
                            f"`guardianflow models` lists the registered models{listed}") from None


def require_version(client: Any, name: str, version: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
        raise RegistryError(f"{name} has no version {version!r}; its versions are "
                            f"{', '.join(map(str, versions)) or 'none'}.") from None


def aliases_of(client: Any, name: str) -> dict[str, str]:
    return {alias: str(v) for alias, v in (client.get_registered_model(name).aliases or {}).items()}
