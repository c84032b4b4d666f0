"""The content of an e-mail placement: a subject line and body blocks, for a sending system to lay out.

    {"subject": "Ada, new trail shoes are in",
     "preheader": "Light, grippy, and 15% off this week",
     "blocks": [{"type": "text", "text": "..."},
                {"type": "html", "html": "<p>...</p>"},
                {"type": "image", "src": "https://...", "alt": "..."},
                {"type": "button", "text": "Shop now", "url": "https://..."}]}

It renders as any content does (`renderer.py`), with templates at `subject`, `preheader` and the
`text`, `html` and `alt` fields of blocks (`blocks.0.text`); an `html` block is autoescaped. Links and
image sources take no template: a value in a URL could point the reader anywhere. The rendered
result is checked against the shape again: a subject or preheader that came out with a line break
(a value can hold one) would let a value write mail headers, and is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tactful.catalog.model import Catalog
from tactful.render.content import JSON
from tactful.render.lint import LintCode, TemplateCheck, TemplateProblem, lint_variation
from tactful.render.renderer import Renderer, RenderReason, RenderResult

_ONE_LINE = r"^[^\r\n]*$"
_HTTPS = r"^https://\S+$"


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextBlock(_Shape):
    type: Literal["text"]
    text: str = Field(min_length=1)


class HtmlBlock(_Shape):
    type: Literal["html"]
    html: str = Field(min_length=1)


class ImageBlock(_Shape):
    type: Literal["image"]
    src: str = Field(pattern=_HTTPS)
    alt: str = Field(min_length=1)


class ButtonBlock(_Shape):
    type: Literal["button"]
    text: str = Field(min_length=1, pattern=_ONE_LINE)
    url: str = Field(pattern=_HTTPS)


Block = Annotated[TextBlock | HtmlBlock | ImageBlock | ButtonBlock, Field(discriminator="type")]


class EmailContent(_Shape):
    subject: str = Field(min_length=1, max_length=250, pattern=_ONE_LINE)
    preheader: str = Field("", max_length=250, pattern=_ONE_LINE)
    blocks: list[Block] = Field(min_length=1)


_TEMPLATABLE = re.compile(r"^(subject|preheader|blocks\.\d+\.(text|html|alt))$")


def check_email(content: JSON, templates: Mapping[str, str], *, catalog: Catalog) -> TemplateCheck:
    """The lint of an e-mail variation: its shape, which fields take templates, then every template
    as `lint_variation` checks it."""
    problems = [*_shape_problems(content)]
    for path in templates:
        if not _TEMPLATABLE.match(path):
            problems.append(
                TemplateProblem(
                    LintCode.NOT_TEMPLATABLE,
                    "this field of an e-mail takes no template",
                    "template the subject, the preheader, or a block's text, html or alt",
                    field=path,
                )
            )
    check = lint_variation(content, templates, catalog=catalog)
    return TemplateCheck(check.atoms, check.level, (*problems, *check.problems))


def render_email(
    renderer: Renderer, content: JSON, templates: Mapping[str, str], view: Mapping[str, object]
) -> RenderResult:
    """Render an e-mail variation; a result that no longer has the e-mail's shape is not rendered."""
    result = renderer.render(content, templates, view)
    if not result.rendered:
        return result
    try:
        EmailContent.model_validate(result.content)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"])
        return RenderResult(
            RenderReason.BAD_SHAPE, field=where, atoms_read=result.atoms_read, fallbacks=result.fallbacks
        )
    return result


def _shape_problems(content: JSON) -> list[TemplateProblem]:
    try:
        EmailContent.model_validate(content)
    except ValidationError as exc:
        return [
            TemplateProblem(
                LintCode.EMAIL_SHAPE,
                f"not an e-mail's content: {error['msg']}",
                "give it a one-line 'subject' and at least one block of type text, html, image or button",
                field=".".join(str(p) for p in error["loc"]) or None,
            )
            for error in exc.errors()
        ]
    return []
