"""Measurements of the app under hostile input, one module per kind of input."""
