"""Decisions: placements, experiences, audiences, the walk down the pyramid.

    POST /v1/decide ──decisions.decide──▶ profiles.find_subject (never creates) ──▶ the one seam
        (consent.gatekeeper: Allowance + SubjectView) ──▶ decisions.serve over the lineup
        (lineup: what serves, built from published snapshots) ──▶ engine.decide per placement
    placement's experiences ──walk (pure)──▶ Answer ──explain──▶ codes ──logbook──▶ decision_log
                                 │ steps.ServingSteps: conditions · assignment · render
    1:many audiences ──audience_size (HyperLogLog, keyed hashes)──▶ served once k people matched
        (matches counted by decisions; audiences over stored atoms also by audience_count, over
         every stored profile through the seam: daily, and when an audience changes)

    audience condition (JSON) ──conditions.compile──▶ Compiled ──.evaluate(SubjectView)──▶ Outcome
                                        │                 │                   (match | no_match | withheld,
                                        ▼                 ▼                    atoms_read)
                               Problems (code, path) .atoms ──levels.reach(catalog)──▶ Reach
                                                                  (level, undeclared atoms: publishable?)
    admin API ──▶ service / experiences ──▶ checks (field path + how to fix) ──▶ rows + a version + audit
    publish ────▶ publishing.check_publish (structure, the condition language, the template lint) ──▶ live

The model (`models`): a placement has a channel and a default variation that always answers; an
experience on it has variations, a strategy, a schedule, a holdout and an optional audience. Each
change is a version; what serves is the latest published version (`service.serving`).
"""
