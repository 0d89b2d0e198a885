-- 0034: the dashboard's daily rollups (issue 19, docs/dashboard.md).
-- `stats_daily` holds one counter of one figure group for one day (Asia/Ho_Chi_Minh) and one
-- agency; every figure the API gives is a sum of these rows (a median: of histogram buckets).
-- `stats_dirty` is the queue of (figure, day, agency) cells whose raw rows changed: the triggers
-- below add to it in the very transaction of the change, the fold job (server/stats/rollups.py,
-- on one worker) recomputes those cells from the raw rows and empties it. `stats_attachments`
-- maps an attachment's digest to the documents carrying it, so that a verification report
-- stored later finds the cell it changes without reading every document's meta_json.
CREATE TABLE stats_daily (
    figure   TEXT NOT NULL,
    day      TEXT NOT NULL,
    agency   TEXT NOT NULL,
    counter  TEXT NOT NULL,
    value    BIGINT NOT NULL,
    PRIMARY KEY (figure, day, agency, counter)
);
CREATE INDEX stats_daily_agency ON stats_daily (figure, agency, day);

CREATE TABLE stats_dirty (
    figure  TEXT NOT NULL,
    day     TEXT NOT NULL,
    agency  TEXT NOT NULL,
    PRIMARY KEY (figure, day, agency)
);

CREATE TABLE stats_attachments (
    sha256    TEXT NOT NULL,
    document  TEXT NOT NULL REFERENCES documents (id),
    PRIMARY KEY (sha256, document)
);

INSERT OR IGNORE INTO stats_attachments (sha256, document)
    SELECT json_extract(a.value, '$.sha256'), d.id
    FROM documents d, json_each(d.meta_json, '$.attachments') a
    WHERE d.kind = 'document' AND json_valid(d.meta_json) AND a.type = 'object'
      AND json_extract(a.value, '$.sha256') IS NOT NULL;

-- Exchange: a document is counted on its sender's day of sending; a delivery (received, its
-- acknowledgement, the recipient's first status 03) on the recipient's day of the delivery.
CREATE TRIGGER stats_documents_in AFTER INSERT ON documents WHEN NEW.kind = 'document'
BEGIN
    INSERT OR IGNORE INTO stats_dirty VALUES
        ('exchange', date(NEW.received_at, '+7 hours'), NEW.sender);
    INSERT OR IGNORE INTO stats_attachments (sha256, document)
        SELECT json_extract(a.value, '$.sha256'), NEW.id
        FROM json_each(CASE WHEN json_valid(NEW.meta_json) THEN NEW.meta_json ELSE '{}' END,
                       '$.attachments') a
        WHERE a.type = 'object' AND json_extract(a.value, '$.sha256') IS NOT NULL;
END;
CREATE TRIGGER stats_deliveries_in AFTER INSERT ON deliveries WHEN NEW.kind = 'document'
BEGIN
    INSERT OR IGNORE INTO stats_dirty VALUES
        ('exchange', date(NEW.created_at, '+7 hours'), NEW.recipient);
END;
CREATE TRIGGER stats_deliveries_acked AFTER UPDATE OF acked_at ON deliveries
    WHEN NEW.kind = 'document'
BEGIN
    INSERT OR IGNORE INTO stats_dirty VALUES
        ('exchange', date(NEW.created_at, '+7 hours'), NEW.recipient);
END;
CREATE TRIGGER stats_statuses_in AFTER INSERT ON statuses WHEN NEW.code = '03'
BEGIN
    INSERT OR IGNORE INTO stats_dirty
        SELECT 'exchange', date(l.created_at, '+7 hours'), l.recipient
        FROM deliveries l WHERE l.document_id = NEW.document_id AND l.recipient = NEW.sender;
END;
CREATE TRIGGER stats_reports_in AFTER INSERT ON verification_reports
BEGIN
    INSERT OR IGNORE INTO stats_dirty
        SELECT 'exchange', date(d.received_at, '+7 hours'), d.sender
        FROM stats_attachments a JOIN documents d ON d.id = a.document
        WHERE a.sha256 = NEW.attachment_sha256;
END;

-- Dossiers: a dossier touches the days it was received, is due and had events on (its end
-- among them); any change to it marks them all (few rows: its own events).
CREATE TRIGGER stats_dossiers_in AFTER INSERT ON dossiers
BEGIN
    INSERT OR IGNORE INTO stats_dirty VALUES
        ('dossiers', date(NEW.received_at, '+7 hours'), NEW.agency),
        ('dossiers', date(NEW.due_at, '+7 hours'), NEW.agency);
END;
CREATE TRIGGER stats_dossiers_changed AFTER UPDATE ON dossiers
BEGIN
    INSERT OR IGNORE INTO stats_dirty VALUES
        ('dossiers', date(OLD.received_at, '+7 hours'), OLD.agency),
        ('dossiers', date(OLD.due_at, '+7 hours'), OLD.agency),
        ('dossiers', date(NEW.received_at, '+7 hours'), NEW.agency),
        ('dossiers', date(NEW.due_at, '+7 hours'), NEW.agency);
    INSERT OR IGNORE INTO stats_dirty
        SELECT 'dossiers', date(e.at, '+7 hours'), NEW.agency
        FROM dossier_events e WHERE e.dossier = NEW.code;
END;
CREATE TRIGGER stats_dossier_events_in AFTER INSERT ON dossier_events
BEGIN
    INSERT OR IGNORE INTO stats_dirty
        SELECT 'dossiers', date(NEW.at, '+7 hours'), d.agency FROM dossiers d
        WHERE d.code = NEW.dossier;
END;
CREATE TRIGGER stats_dossier_files_in AFTER INSERT ON dossier_files WHEN NEW.event IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO stats_dirty
        SELECT 'dossiers', date(e.at, '+7 hours'), d.agency
        FROM dossier_events e JOIN dossiers d ON d.code = e.dossier
        WHERE e.dossier = NEW.dossier;
END;

-- Feedback: counted on the day it was received, for its competent agency.
CREATE TRIGGER stats_feedback_in AFTER INSERT ON feedback
BEGIN
    INSERT OR IGNORE INTO stats_dirty VALUES
        ('feedback', date(NEW.received_at, '+7 hours'), NEW.agency);
END;
CREATE TRIGGER stats_feedback_changed AFTER UPDATE ON feedback
BEGIN
    INSERT OR IGNORE INTO stats_dirty VALUES
        ('feedback', date(OLD.received_at, '+7 hours'), OLD.agency),
        ('feedback', date(NEW.received_at, '+7 hours'), NEW.agency);
END;

-- What was stored before this migration: every cell it touches is queued, the fold job computes
-- them (the same marking as `lienthong stats rebuild`, storage/repos/stats.py MARK_ALL).
INSERT OR IGNORE INTO stats_dirty
    SELECT 'exchange', date(received_at, '+7 hours'), sender FROM documents WHERE kind = 'document';
INSERT OR IGNORE INTO stats_dirty
    SELECT 'exchange', date(created_at, '+7 hours'), recipient FROM deliveries
    WHERE kind = 'document';
INSERT OR IGNORE INTO stats_dirty
    SELECT 'dossiers', date(received_at, '+7 hours'), agency FROM dossiers;
INSERT OR IGNORE INTO stats_dirty
    SELECT 'dossiers', date(due_at, '+7 hours'), agency FROM dossiers;
INSERT OR IGNORE INTO stats_dirty
    SELECT 'dossiers', date(e.at, '+7 hours'), d.agency
    FROM dossier_events e JOIN dossiers d ON d.code = e.dossier;
INSERT OR IGNORE INTO stats_dirty
    SELECT 'feedback', date(received_at, '+7 hours'), agency FROM feedback;
