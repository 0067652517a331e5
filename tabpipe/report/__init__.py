"""The pull request's report: what a change does to params, metrics, plots, validation and the gate.

`pr` builds the comment from data (pure), `collect` asks DVC and reads the pipeline's files,
`github` keeps one comment per pull request up to date.
"""
