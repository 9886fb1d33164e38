"""Signed webhook notifications against a real HTTP receiver on loopback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gfcore.automation import webhook
from gfcore.core.errors import NotifyError

SECRET = "s3cret-for-tests"


class Receiver:
    """Answers each POST with the next status in `statuses` (the last one repeats) and keeps what it got."""

    def __init__(self, statuses: list[int]):
        self.statuses, self.got = list(statuses), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.got.append((self.headers, body))  # header names are case-insensitive
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"bad signature" if status == 403 else b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(request):
    made = []

    def make(*statuses: int) -> Receiver:
        made.append(Receiver(list(statuses)))
        return made[-1]

    yield make
    for r in made:
        r.close()


PAYLOAD = {"text": "1 new alert: champion det.mAP50 0.61 < 0.75", "alerts": [{"rule": "low_accuracy"}]}


def test_the_receiver_verifies_the_signature_of_the_raw_body(receiver):
    r = receiver(200)
    done = webhook.send(PAYLOAD, r.url, SECRET, retries=0)
    assert (done.status, done.attempts) == (200, 1)
    [(headers, body)] = r.got
    assert headers["Content-Type"] == "application/json"
    assert webhook.verify(body, SECRET, headers[webhook.SIGNATURE_HEADER])
    assert not webhook.verify(body, "another secret", headers[webhook.SIGNATURE_HEADER])
    assert not webhook.verify(body + b" ", SECRET, headers[webhook.SIGNATURE_HEADER])
    assert json.loads(body) == PAYLOAD and json.loads(body)["text"].startswith("1 new alert")


def test_server_errors_are_retried_with_backoff_then_delivered(receiver):
    r = receiver(500, 503, 200)
    done = webhook.send(PAYLOAD, r.url, SECRET, retries=3, backoff_s=0.01)
    assert (done.status, done.attempts) == (200, 3) and len(r.got) == 3
    assert len({body for _, body in r.got}) == 1, "the same signed body each time"


def test_a_refusal_is_not_retried_and_says_what_to_check(receiver):
    r = receiver(403)
    refused = r"refused the notification: HTTP 403.*bad signature.*GF_ALERT_WEBHOOK_SECRET"
    with pytest.raises(NotifyError, match=refused):
        webhook.send(PAYLOAD, r.url, SECRET, retries=3, backoff_s=0.01)
    assert len(r.got) == 1


def test_bounded_retries_when_nobody_answers(receiver):
    r = receiver(502)
    with pytest.raises(NotifyError, match=r"did not take the notification after 3 attempts \(HTTP 502"):
        webhook.send(PAYLOAD, r.url, SECRET, retries=2, backoff_s=0.01)
    assert len(r.got) == 3
    closed = receiver(200)
    url = closed.url
    closed.close()
    with pytest.raises(NotifyError, match="after 2 attempts"):
        webhook.send(PAYLOAD, url, SECRET, retries=1, backoff_s=0.01)


def test_url_and_secret_come_from_the_environment_only(monkeypatch):
    monkeypatch.delenv(webhook.URL_ENV, raising=False)
    with pytest.raises(NotifyError, match="set GF_ALERT_WEBHOOK_URL"):
        webhook.configured()
    monkeypatch.setenv(webhook.URL_ENV, "ftp://example")
    with pytest.raises(NotifyError, match="not an http"):
        webhook.configured()
    monkeypatch.setenv(webhook.URL_ENV, "http://127.0.0.1:9/hook")
    monkeypatch.setenv(webhook.SECRET_ENV, "x")
    assert webhook.configured() == ("http://127.0.0.1:9/hook", "x")
