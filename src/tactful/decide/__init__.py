"""Decisions: placements, experiences, audiences, the walk down the pyramid. (Not built yet.)"""
