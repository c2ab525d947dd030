"""Data sources, validation and the prepared-dataset writer/reader."""
