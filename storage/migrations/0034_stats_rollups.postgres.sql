-- 0034 on PostgreSQL: what the translation of 0034_stats_rollups.sql refuses (its tables are
-- translated and created first): the same marking of dirty cells by triggers (the SQLite file
-- says what each one does and why), written as plpgsql trigger functions. `date(t, '+7 hours')`
-- is lt_day(t); json_each over meta_json's attachments is jsonb_array_elements over
-- lt_attachments(meta_json) (an unreadable meta_json: none).

-- The day (Asia/Ho_Chi_Minh, +07:00 all year) of a stored UTC time, as 'YYYY-MM-DD'.
CREATE FUNCTION lt_day(t TEXT) RETURNS TEXT LANGUAGE sql STABLE AS $fn$
    SELECT to_char((t::timestamptz AT TIME ZONE 'UTC') + interval '7 hours', 'YYYY-MM-DD')
$fn$;
-- The attachments array of a document's meta_json, or an empty array.
CREATE FUNCTION lt_attachments(meta TEXT) RETURNS jsonb LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    j jsonb;
BEGIN
    BEGIN
        j := meta::jsonb;
    EXCEPTION WHEN OTHERS THEN
        RETURN '[]'::jsonb;
    END;
    IF jsonb_typeof(j -> 'attachments') = 'array' THEN
        RETURN j -> 'attachments';
    END IF;
    RETURN '[]'::jsonb;
END
$fn$;

INSERT INTO stats_attachments (sha256, document)
    SELECT a.value ->> 'sha256', d.id
    FROM documents d, jsonb_array_elements(lt_attachments(d.meta_json)) AS a (value)
    WHERE d.kind = 'document' AND jsonb_typeof(a.value) = 'object'
      AND a.value ->> 'sha256' IS NOT NULL
    ON CONFLICT DO NOTHING;

CREATE FUNCTION stats_documents_in() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO stats_dirty VALUES ('exchange', lt_day(NEW.received_at), NEW.sender)
        ON CONFLICT DO NOTHING;
    INSERT INTO stats_attachments (sha256, document)
        SELECT a.value ->> 'sha256', NEW.id
        FROM jsonb_array_elements(lt_attachments(NEW.meta_json)) AS a (value)
        WHERE jsonb_typeof(a.value) = 'object' AND a.value ->> 'sha256' IS NOT NULL
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER stats_documents_in AFTER INSERT ON documents
    FOR EACH ROW WHEN (NEW.kind = 'document') EXECUTE FUNCTION stats_documents_in();

CREATE FUNCTION stats_deliveries_marked() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO stats_dirty VALUES ('exchange', lt_day(NEW.created_at), NEW.recipient)
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER stats_deliveries_in AFTER INSERT ON deliveries
    FOR EACH ROW WHEN (NEW.kind = 'document') EXECUTE FUNCTION stats_deliveries_marked();
CREATE TRIGGER stats_deliveries_acked AFTER UPDATE OF acked_at ON deliveries
    FOR EACH ROW WHEN (NEW.kind = 'document') EXECUTE FUNCTION stats_deliveries_marked();

CREATE FUNCTION stats_statuses_in() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO stats_dirty
        SELECT 'exchange', lt_day(l.created_at), l.recipient
        FROM deliveries l WHERE l.document_id = NEW.document_id AND l.recipient = NEW.sender
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER stats_statuses_in AFTER INSERT ON statuses
    FOR EACH ROW WHEN (NEW.code = '03') EXECUTE FUNCTION stats_statuses_in();

CREATE FUNCTION stats_reports_in() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO stats_dirty
        SELECT 'exchange', lt_day(d.received_at), d.sender
        FROM stats_attachments a JOIN documents d ON d.id = a.document
        WHERE a.sha256 = NEW.attachment_sha256
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER stats_reports_in AFTER INSERT ON verification_reports
    FOR EACH ROW EXECUTE FUNCTION stats_reports_in();

CREATE FUNCTION stats_dossiers_in() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO stats_dirty VALUES
        ('dossiers', lt_day(NEW.received_at), NEW.agency),
        ('dossiers', lt_day(NEW.due_at), NEW.agency)
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER stats_dossiers_in AFTER INSERT ON dossiers
    FOR EACH ROW EXECUTE FUNCTION stats_dossiers_in();

CREATE FUNCTION stats_dossiers_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO stats_dirty
        SELECT DISTINCT * FROM (VALUES
            ('dossiers', lt_day(OLD.received_at), OLD.agency),
            ('dossiers', lt_day(OLD.due_at), OLD.agency),
            ('dossiers', lt_day(NEW.received_at), NEW.agency),
            ('dossiers', lt_day(NEW.due_at), NEW.agency)) AS c
        ON CONFLICT DO NOTHING;
    INSERT INTO stats_dirty
        SELECT DISTINCT 'dossiers', lt_day(e.at), NEW.agency
        FROM dossier_events e WHERE e.dossier = NEW.code
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER stats_dossiers_changed AFTER UPDATE ON dossiers
    FOR EACH ROW EXECUTE FUNCTION stats_dossiers_changed();

CREATE FUNCTION stats_dossier_events_in() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO stats_dirty
        SELECT 'dossiers', lt_day(NEW.at), d.agency FROM dossiers d WHERE d.code = NEW.dossier
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER stats_dossier_events_in AFTER INSERT ON dossier_events
    FOR EACH ROW EXECUTE FUNCTION stats_dossier_events_in();

CREATE FUNCTION stats_dossier_files_in() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO stats_dirty
        SELECT DISTINCT 'dossiers', lt_day(e.at), d.agency
        FROM dossier_events e JOIN dossiers d ON d.code = e.dossier
        WHERE e.dossier = NEW.dossier
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER stats_dossier_files_in AFTER INSERT ON dossier_files
    FOR EACH ROW WHEN (NEW.event IS NOT NULL) EXECUTE FUNCTION stats_dossier_files_in();

CREATE FUNCTION stats_feedback_in() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO stats_dirty VALUES ('feedback', lt_day(NEW.received_at), NEW.agency)
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER stats_feedback_in AFTER INSERT ON feedback
    FOR EACH ROW EXECUTE FUNCTION stats_feedback_in();

CREATE FUNCTION stats_feedback_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO stats_dirty
        SELECT DISTINCT * FROM (VALUES
            ('feedback', lt_day(OLD.received_at), OLD.agency),
            ('feedback', lt_day(NEW.received_at), NEW.agency)) AS c
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER stats_feedback_changed AFTER UPDATE ON feedback
    FOR EACH ROW EXECUTE FUNCTION stats_feedback_changed();

INSERT INTO stats_dirty
    SELECT 'exchange', lt_day(received_at), sender FROM documents WHERE kind = 'document'
    UNION SELECT 'exchange', lt_day(created_at), recipient FROM deliveries
    WHERE kind = 'document'
    UNION SELECT 'dossiers', lt_day(received_at), agency FROM dossiers
    UNION SELECT 'dossiers', lt_day(due_at), agency FROM dossiers
    UNION SELECT 'dossiers', lt_day(e.at), d.agency
    FROM dossier_events e JOIN dossiers d ON d.code = e.dossier
    UNION SELECT 'feedback', lt_day(received_at), agency FROM feedback
    ON CONFLICT DO NOTHING;
