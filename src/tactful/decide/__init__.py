"""Decisions: placements, experiences, audiences, the walk down the pyramid.

Built so far: the model and its management API, the condition language, assignment, and the walk
with its explanations and log. Not yet joined: `POST /v1/decide` (it will read the subject through
`consent.gatekeeper.subject_allowance`, load the serving versions, and call `engine.decide` with
conditions, assignment and rendering as the walk's `Steps`).

    placement's experiences ──walk (pure)──▶ Answer ──explain──▶ codes ──logbook──▶ decision_log
                                 │ Steps: conditions · assignment · render

    audience condition (JSON) ──conditions.compile──▶ Compiled ──.evaluate(SubjectView)──▶ Outcome
                                        │                 │                   (match | no_match | withheld,
                                        ▼                 ▼                    atoms_read)
                               Problems (code, path) .atoms ──levels.reach(catalog)──▶ Reach
                                                                  (level, undeclared atoms: publishable?)
    admin API ──▶ service / experiences ──▶ checks (field path + how to fix) ──▶ rows + a version + audit
    publish ────▶ publishing.check_publish (structure; condition and template checks plug in) ──▶ live

The model (`models`): a placement has a channel and a default variation that always answers; an
experience on it has variations, a strategy, a schedule, a holdout and an optional audience. Each
change is a version; what serves is the latest published version (`service.serving`).
"""
