"""The README's quick start, run: the decision its `curl` asks for, the answer it shows, the
explanation in Swedish and the Python snippet with what it prints, against the demo shop seeded
with the README's customer. Change the demo and this fails until the README says what it does."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import tactful.sdk
from tactful.demo.placements import VISITOR
from tactful.keys.schemas import Scope
from tactful.sdk import Backoff, Client
from tests.demo.builders import Shop, seeded_shop

README = Path(__file__).parents[2] / "README.md"
VOLATILE = {"decision_id", "decided_at"}
"""Members that differ with every decision (the README shortens its ids)."""


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"### {title}\n")
    end = re.compile(r"^#{2,3} ", flags=re.MULTILINE).search(text, start + 4)
    return text[start : end.start() if end else None]


def blocks(text: str) -> list[tuple[str, str]]:
    """The fenced code blocks of `text`: (language, code)."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


FIRST = blocks(section("Your first decision"))


def block(language: str, index: int = 0) -> str:
    return [code for lang, code in FIRST if lang == language][index]


def without(value: Any, names: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: without(v, names) for k, v in value.items() if k not in names}
    if isinstance(value, list):
        return [without(v, names) for v in value]
    return value


@pytest.fixture(scope="module")
def shop(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    with seeded_shop(backend, tmp_path_factory.mktemp("readme")) as seeded:
        yield seeded


def curl_body(command: str) -> dict[str, Any]:
    found = re.search(r"-d '(.*?)'", command, flags=re.DOTALL)
    assert found, command
    body: dict[str, Any] = json.loads(found.group(1))
    return body


def test_the_readme_decides_for_the_visitor_the_demo_prints() -> None:
    assert curl_body(block("sh", 0))["user_id"] == VISITOR


def test_the_curl_gets_the_answer_the_readme_shows(shop: Shop) -> None:
    command = block("sh", 0)
    assert 'curl -u "tfk_server_...:" http://127.0.0.1:8000/v1/decide' in command
    response = shop.api.post("/v1/decide", json=curl_body(command), auth=shop.auth(Scope.SERVER))
    assert response.status_code == 200, response.text
    shown = json.loads(block("json", 0))
    assert without(response.json(), VOLATILE) == without(shown, VOLATILE)
    assert all(d["decision_id"].startswith("dc_") for d in response.json()["decisions"])


EXPLAIN = re.compile(
    r'"tfk_write_\.\.\.:" "http://127\.0\.0\.1:8000(/v1/decisions/)dc_\S+?(/explanation\?\S+)"'
)


def test_the_explanation_curl_gets_the_swedish_answer_the_readme_shows(shop: Shop) -> None:
    decided = shop.api.post("/v1/decide", json=curl_body(block("sh", 0)), auth=shop.auth(Scope.SERVER))
    greeting = next(d for d in decided.json()["decisions"] if d["placement"] == "greeting")
    command = block("sh", 1)
    found = EXPLAIN.search(command)
    assert found, command
    url = found.group(1) + greeting["decision_id"] + found.group(2)
    response = shop.api.get(url, auth=shop.auth(Scope.WRITE))  # the public key may ask
    assert response.status_code == 200, response.text
    assert without(response.json(), VOLATILE) == without(json.loads(block("json", 1)), VOLATILE)


def test_the_python_snippet_prints_what_the_readme_shows(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def forward(request: httpx.Request) -> httpx.Response:
        answer = shop.api.request(
            request.method,
            request.url.path,
            params=request.url.params,
            content=request.content,
            headers=dict(request.headers),
        )
        headers = {"content-type": answer.headers["content-type"]}
        return httpx.Response(answer.status_code, headers=headers, content=answer.content)

    def served(*, base_url: str, api_key: str) -> Client:
        assert (base_url, api_key) == ("http://127.0.0.1:8000", "tfk_server_...")
        return Client(
            base_url=base_url, api_key=shop.key(Scope.SERVER), transport=httpx.MockTransport(forward),
            backoff=Backoff(retries=0),
        )  # fmt: skip

    monkeypatch.setattr(tactful.sdk, "Client", served)
    exec(compile(block("python"), "README.md", "exec"), {})  # noqa: S102  # the README's own code
    assert printed(capsys.readouterr().out) == printed(block("text"))


def printed(text: str) -> list[object]:
    """Printed lines read back: `placement level strategy content`, or a list, with the content and
    the list as Python values (PostgreSQL keeps JSON objects in an order of its own)."""
    lines: list[object] = []
    for line in text.splitlines():
        if line.startswith("["):
            lines.append(ast.literal_eval(line))
        else:
            *words, content = line.split(" ", 3)
            lines.append([*words, ast.literal_eval(content)])
    return lines
