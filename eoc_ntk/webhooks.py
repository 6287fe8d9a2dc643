"""Receiving the service's job webhooks: :func:`verify` a delivery's signature.

A job submitted with ``callback_url`` is POSTed, once it has ended, to that URL as the job
resource (JSON), with the header ``X-EOC-NTK-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"t.body">`` under the service's ``EOC_NTK_WEBHOOK_SECRET`` (see docs/webhooks.md)::

    from eoc_ntk.webhooks import verify, WebhookSignatureError

    try:
        verify(raw_body, request_headers["X-EOC-NTK-Signature"], secret)   # True, or raises
    except WebhookSignatureError:
        ...  # answer 400 and ignore the delivery

:func:`verify` returns True or raises :class:`WebhookSignatureError` (never returns False), so
that a forgotten check of its value cannot accept a forged delivery.
"""
from __future__ import annotations

from eoc_ntk.core.webhook_signature import SIGNATURE_HEADER, WebhookSignatureError, signature_header, verify

__all__ = ["verify", "signature_header", "WebhookSignatureError", "SIGNATURE_HEADER"]
