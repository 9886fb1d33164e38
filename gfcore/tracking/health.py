"""Is the tracking server there right now? One quick probe, no retries."""

from __future__ import annotations


def answers(uri: str, timeout_s: float = 2.0) -> bool:
    """True when `uri`'s /health answers below 500 within `timeout_s`."""
    import requests

    try:
        return requests.get(f"{uri.rstrip('/')}/health", timeout=timeout_s).status_code < 500
    except requests.RequestException:
        return False
