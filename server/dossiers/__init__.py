"""One-stop dossiers (hồ sơ một cửa liên thông): the domain of administrative procedures.

A citizen or business files a dossier for an administrative procedure (thủ tục hành chính) at a
one-stop section (bộ phận một cửa); the competent agency processes it, sometimes across agencies
(một cửa liên thông), and the result is returned. This package owns:

- the procedure catalogue (``procedures.py``: a procedure's national code, field, competent
  agency, processing time, dossier components, fees, online level and steps across agencies,
  with the rules a procedure obeys; ``procedure_files.py``: the CSV and JSON files
  ``lienthong procedure import`` reads; ``catalogue.py``: storing procedures, all or nothing,
  with their audit entries);
- ``errors.py``: the domain's refusals with their problem types.

Dossiers themselves (intake, the DVCQG status lifecycle, due dates on the working-day calendar,
slips, transfer over the exchange, public lookup) are to come (issue 16). Routes live in
``server/http/``; storage in ``storage/repos/procedures.py``.
"""
