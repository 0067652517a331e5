"""The `tabpipe` command line (app.py) and the commands behind it, one module each."""
