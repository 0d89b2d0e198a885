-- 0013: the procedure catalogue of one-stop dossiers (thủ tục hành chính, issue 16).
--
-- One row per procedure, keyed by its national code (mã thủ tục, e.g. 1.001193). `body` is the
-- procedure's JSON form (server/dossiers/procedures.py procedure_json: name, field, processing
-- time, components, fees, online level, steps), read and written whole. `agency` is the
-- competent agency, a column so that an agency's procedures can be listed; the steps' agencies
-- are checked against `agencies` when a procedure is stored. Rows are updated in place by
-- `lienthong procedure import`; each change is in the audit log.
CREATE TABLE procedures (
    code        TEXT PRIMARY KEY,
    agency      TEXT NOT NULL REFERENCES agencies (organ_id),
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX procedures_agency ON procedures (agency, code);
