"""The drift simulation (`tabpipe simulate`): the monitoring loop played through in a sandbox copy of the project."""
