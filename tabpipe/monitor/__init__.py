"""Is the served model still fit for its traffic? Drift, prediction drift, live metrics, the retrain call."""
