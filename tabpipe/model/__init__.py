"""The model: preprocessing, candidate estimators, the search, prediction, evaluation and the gate."""
