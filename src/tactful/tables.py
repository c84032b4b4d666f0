"""Every table of the main database, imported in one place: Alembic's environment and the tests'
set-up read the whole schema from here.

It sits above every domain in the layer picture (beside `main`), since it imports each domain's
models; nothing below it imports it. `tests/foundation/test_tables.py` fails when a module that
defines tables is missing from it.
"""

from __future__ import annotations

from types import ModuleType

from tactful.audit import models as audit_models
from tactful.collect import models as collect_models
from tactful.consent import models as consent_models
from tactful.decide import models as decide_models
from tactful.keys import models as keys_models
from tactful.measure import models as measure_models
from tactful.profiles import models as profiles_models
from tactful.rights import models as rights_models

MODEL_MODULES: tuple[ModuleType, ...] = (
    audit_models,
    keys_models,
    profiles_models,
    collect_models,
    consent_models,
    decide_models,
    measure_models,
    rights_models,
)


def import_all_models() -> None:
    """Every model module is imported with this one: the metadata holds the whole schema."""
