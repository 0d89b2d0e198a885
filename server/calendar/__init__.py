"""The working-day calendar (lịch làm việc) shared by dossiers, citizen feedback and the dashboard.

- ``days.py``: which days are working days: the ``holidays`` package's VN calendar (the version
  uv.lock pins), the corrections shipped in ``vn_overrides.json`` (``shipped.py``) and the days
  an admin decided (the override table, ``store.py``), the last winning; per-year tables.
- ``hours.py``: the working hours of a day (``[dossiers]`` in the config).
- ``clock.py``: due dates (ngày hẹn trả) and working time: when the clock starts, N working days
  later, calendar-day periods (Civil Code art. 148), paused working time.
- ``store.py``: loading the overrides once, noticing edits, recording an edit with its audit
  entry.

Imports only ``server.runtime`` (and ``storage``): docs/ARCHITECTURE.md, docs/dossiers.md.
"""
