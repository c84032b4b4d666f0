"""Learning: bandits and recommenders over SubjectViews, training jobs, off-policy evaluation. (Not built yet.)"""
