"""Detectors, one module each; see ``artifacts.registry`` for the list."""
