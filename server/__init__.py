"""server: the Liên Thông axis (aiohttp application, domain modules and the ``lienthong`` CLI)."""

__version__ = "0.1.0"
