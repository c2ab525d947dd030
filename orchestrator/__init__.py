"""The parent process: plans, spawns and supervises one worker per detector.

This package never imports TensorFlow, Keras or scikit-learn, so a notebook
that calls ``orchestrator.run`` cannot be killed by training.
"""
from orchestrator.api import run

__all__ = ["run"]
