"""The child side: ``python -m workers <job_dir>`` runs one job in a fresh interpreter.

Kept import-light on purpose: the parent locates detector modules under this
package (for fingerprints) without importing scikit-learn or TensorFlow.
"""
