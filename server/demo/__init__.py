"""What ``make run`` shows: the demo agencies, package and PDF (``content``) and the data
directory prepared for them (``setup``: test PKI, tokens, VDXP secrets, the demo config).
"""
