"""tabpipe: the logic behind the DVC stages, the BentoML service, the monitor and the `tabpipe` command.

Sub-packages, by concern (each imports only those listed before it):
    core      errors, atomic file writes, hashes, typed params settings, dvc.yaml's paths, the stage entry
    data      the schema, dataset loaders, the split, schema checks, drift, validation
    model     preprocessing, candidate estimators, the search, compiling to ONNX, prediction, evaluation, the gate
    tracking  MLflow: where runs go, the tracked training run, the model registry
    serve     what the BentoML service needs: manifest, model store, request model, guard, prediction log
    monitor   drift and live metrics of served traffic, the retrain decision, the Prometheus textfile
    notify    the team's webhook: gate refusals, new champions, retrain advice
    report    the pull-request report and its one GitHub comment
    sandbox   throwaway project copies and the local servers beside them
    bench     the benchmarks and the peers they measure against
    deploy    release (build, serve the Bento, smoke-test) and rollback
    cli       the `tabpipe` command
"""
