"""Throwaway copies of the project (project.py) and the local servers run beside them (servers.py): for the
release smoke test, the simulation, the benchmarks and the tests, never for the pipeline itself."""
