"""Signatures on the axis: officers' deferred signing and agencies' seals (``sessions``, with
``requests`` for what a request asks, ``session_jwt`` for the VGCA plugin), verification of
received PDFs on arrival and on demand (``verification``, with ``verdicts``), and the renewal
of signed originals' evidence before it expires (``renewal``). Its refusals are in ``errors``.
It may import ``server.runtime`` and ``server.exchange`` (the documents it signs and verifies);
never the HTTP layer.
"""
