"""The fleet commands' `--tag K=V` (a scenario's `exp.tags`): the runs and registered versions that carry them."""

from __future__ import annotations

from typing import Any

from gfcore.core.errors import ConfigError


def tag_filter(tags: dict[str, str] | None) -> str:
    """MLflow filter clauses for runs carrying every tag `K=V` of `tags` (`exp.tags`: purpose, ticket, ...)."""
    clauses = []
    for key, value in (tags or {}).items():
        if "`" in key or ("'" in value and '"' in value):
            raise ConfigError(f"--tag {key}={value}: a tag filter cannot hold a backquote in the name, nor both kinds "
                              "of quote in the value.")
        quote = '"' if "'" in value else "'"
        clauses.append(f"tags.`{key}` = {quote}{value}{quote}")
    return " and ".join(clauses)


def both(*clauses: str) -> str:
    """MLflow filter clauses joined, the empty ones left out."""
    return " and ".join(c for c in clauses if c)


def carries(c: Any, version: Any, tags: dict[str, str]) -> bool:
    """Whether registered `version` carries every tag of `tags`: its own version tag, or where it has none of that
    name (registered before the scenario tagged it, or tagged on the run by hand), the tag of the run that
    registered it."""
    missing = {k: v for k, v in tags.items() if k not in version.tags}
    if any(version.tags[k] != v for k, v in tags.items() if k not in missing):
        return False
    if not missing:
        return True
    run_tags = c.get_run(version.run_id).data.tags if version.run_id else {}
    return all(run_tags.get(k) == v for k, v in missing.items())
