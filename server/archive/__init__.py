"""The archive (lưu trữ): what was received, as received, with its history and its signatures'
evidence, for the parties and their archivists, and as BagIt packages (``records``). It may
import ``server.runtime``, ``server.exchange`` and ``server.signatures``; never the HTTP layer.
"""
