"""Learning: bandits and recommenders over SubjectViews, training, off-policy evaluation.

Not built yet."""
