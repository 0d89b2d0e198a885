"""storage/objects."""
