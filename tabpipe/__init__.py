"""tabpipe: the logic behind the DVC stages, the BentoML service and the tests."""
