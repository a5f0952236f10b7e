"""What we sign verifies with the official Standard Webhooks library, as a receiver runs it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from theazo.core.webhook_events import new_secret
from theazo.webhooks.signing import encode_body, sign_headers

PAYLOAD = {
    "taskId": "task_1",
    "sessionId": "sess_1",
    "status": "completed",
    "output": {"summary": "café ☕", "n": 1.5},
    "error": None,
    "cost": {"amount": 3, "currency": "usd"},
    "completedAt": "2026-01-01T00:00:00.000Z",
}


def test_our_headers_verify_with_the_standardwebhooks_library() -> None:
    secret = new_secret()
    body = encode_body(PAYLOAD)
    headers = sign_headers([secret], "msg_1", body, datetime.now(UTC))

    assert Webhook(secret).verify(body.encode(), headers) == PAYLOAD
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-signature"].startswith("v1,")


def test_the_timestamp_is_whole_seconds_of_the_attempt() -> None:
    moment = datetime(2026, 5, 4, 3, 2, 1, 999_000, tzinfo=UTC)
    headers = sign_headers([new_secret()], "msg_1", "{}", moment)
    assert headers["webhook-timestamp"] == str(int(moment.timestamp()))


def test_during_a_rotation_each_secret_alone_verifies() -> None:
    new, old = new_secret(), new_secret()
    body = encode_body(PAYLOAD)
    headers = sign_headers([new, old], "msg_2", body, datetime.now(UTC))

    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        assert Webhook(secret).verify(body.encode(), headers) == PAYLOAD
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body.encode(), headers)


def test_a_changed_body_or_id_does_not_verify() -> None:
    secret = new_secret()
    body = encode_body(PAYLOAD)
    headers = sign_headers([secret], "msg_3", body, datetime.now(UTC))

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("task_1", "task_2").encode(), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.encode(), {**headers, "webhook-id": "msg_4"})


def test_the_body_is_ascii_json_so_its_bytes_do_not_depend_on_an_encoding() -> None:
    body = encode_body(PAYLOAD)
    assert body.isascii()
    assert body.encode("utf-8") == body.encode("latin-1")


def test_signing_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        sign_headers([], "msg_1", "{}", datetime.now(UTC))
