"""The assembled axis: the aiohttp application built from a config with every domain's routes
and lifetimes (``application``, ``lifetimes``), the processes that serve it (``workers``), and
the development services served beside it (``devservices``). The only ``server`` package that
puts everything together: it may import all of them but ``cli``.
"""
