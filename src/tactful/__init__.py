"""Tactful: a self-hosted personalization engine that knows where the line is."""

__version__ = "0.1.0"
