"""Decisions: placements, experiences, audiences, the walk down the pyramid.

    admin API ──▶ service / experiences ──▶ checks (field path + how to fix) ──▶ rows + a version + audit
    publish ────▶ publishing.check_publish (structure; condition and template checks plug in) ──▶ live

The model (`models`): a placement has a channel and a default variation that always answers; an
experience on it has variations, a strategy, a schedule, a holdout and an optional audience. Each
change is a version; what serves is the latest published version (`service.serving`).
"""
