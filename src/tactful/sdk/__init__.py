"""The Python client of Tactful: collection, consent, decisions and explanations over HTTP.

    your code ──▶ Client / AsyncClient ──(httpx, retries with backoff)──▶ a Tactful server
                   │  identify/track/page/screen/group/alias: queued, ids fixed when queued
                   │  flush() ──▶ POST /v1/batch in batches ──▶ [EventOutcome]
                   │  consent() ──▶ PUT /v1/consent ──▶ ConsentAck
                   │  decide() ──▶ POST /v1/decide ──▶ [Decision]
                   └  explanation() ──▶ GET /v1/decisions/{id}/explanation

It imports no server code (an import-linter contract holds it to that), so it can be installed and
used apart from the server. Errors are in `tactful.sdk.errors`.

    from tactful.sdk import Client

    with Client(base_url="http://127.0.0.1:8000", api_key=SERVER_KEY) as tactful:
        tactful.track("Product Viewed", user_id="u-1", properties={"sku": "TENT-2"})
        for decision in tactful.decide(["home_hero"], user_id="u-1"):
            print(decision.placement, decision.level, decision.content)
"""

from tactful.sdk.calls import Backoff
from tactful.sdk.client import AsyncClient, Client
from tactful.sdk.errors import APIError, QueueFull, RateLimited, ServerUnreachable, TactfulClientError
from tactful.sdk.types import ConsentAck, Decision, EventOutcome

__all__ = [
    "APIError",
    "AsyncClient",
    "Backoff",
    "Client",
    "ConsentAck",
    "Decision",
    "EventOutcome",
    "QueueFull",
    "RateLimited",
    "ServerUnreachable",
    "TactfulClientError",
]
