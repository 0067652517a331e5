"""tabpipe: the logic behind the DVC stages, the BentoML service and the monitor.

Sub-packages, by concern (each imports only those listed before it):
    core      errors, atomic file writes, hashes, typed params settings, dvc.yaml's paths, the stage entry
    data      the schema, dataset loaders, the split, schema checks, drift, validation
    model     preprocessing, candidate estimators, the search, prediction, evaluation, the gate
    tracking  MLflow: where runs go, the tracked training run, the model registry
    serve     what the BentoML service needs: manifest, model store, request model, guard, prediction log
    monitor   drift and live metrics of served traffic, the retrain decision, the Prometheus textfile
"""
