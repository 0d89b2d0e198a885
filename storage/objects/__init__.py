"""Object stores: immutable, content-addressed package bytes (interface + filesystem backend)."""

from storage.objects.base import ObjectRef, ObjectStore
from storage.objects.fs import FilesystemObjectStore

__all__ = ["FilesystemObjectStore", "ObjectRef", "ObjectStore"]
