"""Measurement: exposures, outcomes, attribution, lift, satisfaction and compliance figures. (Not built yet.)"""
