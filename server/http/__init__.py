"""The HTTP layer: every route of the axis, one module per resource (documents, inbox,
statuses, sent, signing, seals, verify, archive, audit, vdxp, metrics, pages...), the
authentication middleware (``auth``), the typed app keys (``appkeys``), problem+json answers
(``errors``) and the OpenAPI document (``openapi``, merging each route module's own
``openapi_paths()``, made of ``openapi_parts``). Handlers stay thin: read the request, call a
domain, write the answer. It may import every domain package and ``server.runtime``; no domain
imports it.
"""
