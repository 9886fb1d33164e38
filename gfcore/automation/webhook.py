"""Notifications to a webhook: a JSON body with a plain `text` (so Slack-compatible receivers show it) plus the
structured alerts, signed with HMAC-SHA256 so the receiver can tell it came from GuardianFlow.

The URL and the secret come from the environment (GF_ALERT_WEBHOOK_URL, GF_ALERT_WEBHOOK_SECRET), never from a
config file. The signature is `X-GuardianFlow-Signature: sha256=<hex HMAC-SHA256 of the raw body with the secret>`;
a receiver verifies it with `hmac.compare_digest` over the bytes it received (README, "Alerts").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from gfcore.core.errors import NotifyError

log = logging.getLogger(__name__)

URL_ENV = "GF_ALERT_WEBHOOK_URL"
SECRET_ENV = "GF_ALERT_WEBHOOK_SECRET"
SIGNATURE_HEADER = "X-GuardianFlow-Signature"
TIMEOUT_S = 10.0


@dataclass
class Delivery:
    status: int
    attempts: int


def sign(body: bytes, secret: str) -> str:
    """The signature header's value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, signature: str) -> bool:
    """What a receiver does: recompute over the raw bytes and compare in constant time."""
    return hmac.compare_digest(sign(body, secret), signature or "")


def configured() -> tuple[str, str | None]:
    """(url, secret) from the environment; a clear error when no URL is set."""
    url = os.environ.get(URL_ENV, "").strip()
    if not url:
        raise NotifyError(f"--notify needs a webhook: set {URL_ENV} (and {SECRET_ENV} to sign the payload) in the "
                          "environment; the URL and secret are never read from a config file.")
    if not url.startswith(("http://", "https://")):
        raise NotifyError(f"{URL_ENV}={url!r} is not an http(s) URL.")
    return url, os.environ.get(SECRET_ENV) or None


def send(payload: dict[str, Any], url: str, secret: str | None, retries: int = 3, backoff_s: float = 1.0) -> Delivery:
    """POST `payload` as JSON. A refusal (4xx) fails at once: sending it again would not change the answer; a
    server error (5xx) or an unreachable receiver is tried `retries` more times, waiting backoff_s, 2x, 4x ..."""
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "guardianflow"}
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    last = ""
    for attempt in range(1, retries + 2):
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                return Delivery(status=response.status, attempts=attempt)
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace").strip()
            if 400 <= exc.code < 500:
                raise NotifyError(f"the webhook at {url} refused the notification: HTTP {exc.code} {exc.reason}"
                                  f"{f' ({detail})' if detail else ''}. Check {URL_ENV} and, if the receiver "
                                  f"verifies signatures, that {SECRET_ENV} is the secret it expects.") from None
            last = f"HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        if attempt <= retries:
            wait = backoff_s * 2 ** (attempt - 1)
            log.warning("webhook %s: %s; trying again in %.1f s (%d of %d)", url, last, wait, attempt, retries)
            time.sleep(wait)
    raise NotifyError(f"the webhook at {url} did not take the notification after {retries + 1} attempts ({last}). "
                      "The alerts stay recorded in MLflow and are sent again on the next `alerts list --notify`.")
