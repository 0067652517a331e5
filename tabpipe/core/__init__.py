"""What every other sub-package builds on: errors, files, hashes, settings, paths, the stage entry point."""
