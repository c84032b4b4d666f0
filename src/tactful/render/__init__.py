"""Rendering: templates as data, run in Jinja2's sandbox, checked against the catalog when published.

    publish (admin)                                    decide (per placement, per subject)
    ───────────────                                    ───────────────────────────────────
    variation content + templates                      variation content + templates
        │                                                  │        SubjectView (policy gate)
        ▼                                                  ▼            │
    lint_variation / check_email (lint.py, email.py)   Renderer.render (renderer.py) ◀─┘
        parse → syntax tree (jinja2.nodes)                 compiled once per source (LRU cache)
        analyse (analysis.py): every atom read,            sandbox.py: one namespace per source
          with or without a fallback                         prefix; `traits.first_name` asks the
        refuse: no fallback, undeclared atom,                view for that atom; withheld, missing
          copy rules (catalog `copy_forbidden`,              or placeholder-looking values are
          `never_in_copy`), placeholder text,                undefined: false in a test, replaced
          internal attributes, unknown names                 by `default(...)`, refused elsewhere
        │                                                  │
        ▼                                                  ▼
    TemplateCheck: atoms, level, problems             RenderResult: content, atoms read, fallbacks
      (line, code, message, fix)                        used; or a reason code (atom_unavailable,
      level = highest level of the atoms read             unsafe, placeholder_in_output, ...) and
      (template_level), counted toward the                the walk goes on below
      experience's level

Invariant 9: rendered content never holds an unresolved placeholder. The lint refuses templates
that read an atom without a fallback; the renderer still treats what a view withholds as missing
(an Allowance changes per subject), and checks its own output with the same detector
(`placeholders.py`) before it answers. Invariant 14: a value from the view is data handed to a
compiled template, never a template itself; the sandbox has no globals and refuses internals.

Pure: plain data in, plain data out; no database, web or clock (an import-linter contract).
"""

from tactful.render.content import JSON, is_html
from tactful.render.email import EmailContent, check_email, render_email
from tactful.render.lint import (
    LintCode,
    TemplateCheck,
    TemplateProblem,
    lint_template,
    lint_variation,
    template_level,
)
from tactful.render.placeholders import find_placeholder, has_placeholder
from tactful.render.renderer import Renderer, RenderReason, RenderResult

__all__ = [
    "JSON",
    "EmailContent",
    "LintCode",
    "RenderReason",
    "RenderResult",
    "Renderer",
    "TemplateCheck",
    "TemplateProblem",
    "check_email",
    "find_placeholder",
    "has_placeholder",
    "is_html",
    "lint_template",
    "lint_variation",
    "render_email",
    "template_level",
]
