"""The national axis client protocol (VDXP): codec, client, agency credentials.

``protocol`` is the pure header/answer codec, ``client`` a client for any VDXP axis (this one
or the national one), ``credentials`` the per-agency system id and encrypted secret.
"""
