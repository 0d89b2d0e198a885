-- 0042 on PostgreSQL: json_valid + json_extract of SQLite, as one function: the JSON text as
-- jsonb, or NULL when it is not JSON (a read never fails on one bad row).
CREATE FUNCTION lt_jsonb(value TEXT) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
    RETURN value::jsonb;
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END
$fn$;

-- SQLite's implicit rowid, which two listings order by (the order rows were stored in): an
-- identity column of the same name on the two tables without a key of their own.
ALTER TABLE dossier_files ADD COLUMN rowid BIGINT GENERATED ALWAYS AS IDENTITY;
ALTER TABLE object_versions ADD COLUMN rowid BIGINT GENERATED ALWAYS AS IDENTITY;
