"""The trivial endpoint the HTTP decision benchmark compares `POST /v1/decide` with.

    python -m bench.trivial --port N   ──▶ uvicorn (as `tactful serve` runs it) ──▶ POST /v1/decide

Shaped like the real route where the framework does the work: a synchronous handler (run in the
thread pool, as Tactful's), a JSON body validated by a pydantic model, a response model serialised
by FastAPI. It reads nothing and writes nothing: what remains is uvicorn, Starlette and FastAPI,
the floor of any endpoint served this way.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, JsonValue


class Ask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = None
    anonymous_id: str | None = None
    placements: list[str] = Field(min_length=1)
    context: dict[str, JsonValue] = Field(default_factory=dict)


class Answer(BaseModel):
    placement: str
    variation: str
    content: JsonValue
    level: str


class Answers(BaseModel):
    decisions: list[Answer]


app = FastAPI(title="trivial", docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/decide")
def decide(body: Ask) -> Answers:
    return Answers(
        decisions=[
            Answer(placement=p, variation="default", content={"text": "Hello!"}, level="1:all")
            for p in body.placements
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.trivial", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # The options `tactful serve` passes (its access log off, warnings only).
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
