"""storage: the metadata database (storage.db, storage.repos) and the object store
(storage.objects). Errors are in storage.errors. Never imports server/."""
