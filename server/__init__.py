"""server: the Liên Thông axis, one package per domain over the plumbing.

``runtime`` (config, logs, spool, object store, secrets, audit, metrics, problem types) under the
domains ``exchange`` (documents and statuses between agencies), ``signatures`` (signing
sessions, seals, verification, renewal), ``archive`` and ``vdxp`` (the national protocol); then
``http`` (every route), ``app`` (the assembled application and its processes), ``demo`` and
``cli`` (the ``lienthong`` command). Imports point down that list; docs/ARCHITECTURE.md has the
table and tests/unit/test_layers.py enforces it.
"""

__version__ = "0.1.0"
