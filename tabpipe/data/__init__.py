"""Datasets and their one schema: loading, splitting, checking and measuring drift."""
