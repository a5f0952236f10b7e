"""Standard Webhooks signatures, made by the ``standardwebhooks`` library itself, so a receiver
that verifies with that library (in any of its languages) accepts what we send unchanged.

The signed content is ``"<webhook-id>.<webhook-timestamp>.<body>"``; the body signed is exactly
the bytes sent (``encode_body``), and each secret that signs now adds one ``v1,<base64>`` to
``webhook-signature``, separated by spaces: during a rotation window the old and the new secret
both sign, and a receiver holding either one accepts the message.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


def encode_body(payload: Mapping[str, Any]) -> str:
    """The JSON sent, as text; its UTF-8 bytes are the request body. ASCII only (non-ASCII
    escaped), so the bytes are the same whatever a receiver's framework decodes them as."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True)


def sign_headers(
    secrets: Sequence[str], message_id: str, body: str, now: datetime
) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt, signed with every secret given.

    The timestamp is the attempt's, in whole seconds: receivers refuse old ones, so each retry
    is signed again, with the same ``webhook-id``.
    """
    if not secrets:
        raise ValueError("a webhook needs at least one secret to be signed")
    seconds = math.floor(now.timestamp())
    moment = datetime.fromtimestamp(seconds, UTC)  # the library reads it as UTC
    signatures = [Webhook(secret).sign(message_id, moment, body) for secret in secrets]
    return {
        ID_HEADER: message_id,
        TIMESTAMP_HEADER: str(seconds),
        SIGNATURE_HEADER: " ".join(signatures),
    }
