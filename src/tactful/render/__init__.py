"""Rendering: sandboxed templates with fallbacks and their publish-time lint. (Not built yet.)"""
