"""Input problems found while preparing data: reported to the user, exit code 2."""


class DataError(ValueError):
    """Bad input data. The message says what, where (file, row, column) and how to fix it."""
