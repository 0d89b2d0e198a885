"""storage/repos."""
