"""Measurement: exposures, outcomes, attribution, lift, satisfaction, compliance figures.

Not built yet."""
