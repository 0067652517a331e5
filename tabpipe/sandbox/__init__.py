"""Throwaway copies of the project and the local servers run beside them: for the simulation, the benchmarks
and the tests, never for the pipeline itself."""
