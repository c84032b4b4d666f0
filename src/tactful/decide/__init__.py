"""Decisions: placements, experiences, audiences, the walk down the pyramid.

What exists so far is the condition language and the level of what a condition reads:

    audience condition (JSON) ──conditions.compile──▶ Compiled ──.evaluate(SubjectView)──▶ Outcome
                                        │                 │                   (match | no_match | withheld,
                                        ▼                 ▼                    atoms_read)
                               Problems (code, path) .atoms ──levels.reach(catalog)──▶ Reach
                                                                  (level, undeclared atoms: publishable?)
"""
