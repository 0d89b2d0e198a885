-- 0006: intent records of package objects (issue 9, orphan sweep). Before the exchange moves a
-- package into the object store it commits a row here; the transaction that inserts the
-- document row deletes it. A row that outlives the grace period with no document naming its
-- digest marks an object of a send that died half-way: the start-up sweep deletes that object
-- and the row. Objects stored without a row here (signed PDFs, attachment versions,
-- verification reports, ...) are never swept.
CREATE TABLE pending_objects (
    sha256      TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL
);
CREATE INDEX pending_objects_age ON pending_objects (created_at);
