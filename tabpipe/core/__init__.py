"""What every other sub-package builds on: errors, files, hashes, settings and the stage entry point."""
