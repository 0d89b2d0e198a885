"""The plumbing every domain of the axis stands on, and nothing domain-specific.

Configuration (``config``), structured logs (``logs``), spooling request bodies to disk while
hashing them (``spool``), opening the object store a config names (``objectstore``), sealing
secrets at rest (``secretbox``), the tamper-evident audit journal every domain records into
(``audit``), Prometheus metrics (``metrics``), bearer tokens (``tokens``) and the problem types
and base error of every domain (``problems``). It imports edxml, signing and storage, never another
``server`` package, and never aiohttp's web server.
"""
