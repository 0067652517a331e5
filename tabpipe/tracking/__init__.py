"""MLflow: where runs go, the tracked training run and evaluation, and the model registry."""
