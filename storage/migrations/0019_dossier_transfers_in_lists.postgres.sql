-- 0019 on PostgreSQL: the UPDATE the translation refuses (the SQLite file says why);
-- json_extract and strftime become jsonb operators and to_char; a reception time that is not
-- a time leaves '' as in SQLite.
CREATE FUNCTION lt_utc_time(value TEXT) RETURNS TEXT LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    RETURN to_char(value::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS".000000Z"');
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END
$fn$;
UPDATE dossier_transfers SET
    procedure = COALESCE(body::jsonb #>> '{procedure,code}', ''),
    received_at = COALESCE(lt_utc_time(body::jsonb ->> 'received_at'), '');
