"""Batch predictions: a whole table scored with the served model, row by row under the service's contract."""
