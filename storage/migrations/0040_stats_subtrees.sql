-- 0040: the dashboard's rollups per subtree of the OrganId tree (issue 19, docs/dashboard.md,
-- "How the figures are kept"), so that a wide scope (a district, the province, everything) reads
-- one row per counter and period rather than one per agency.
-- `stats_tree` says which agency is within which root: a row (agency, root, level) for the agency
-- itself, each of its OrganId ancestors, and '*' (everything); `level` is the agency's own level.
-- The fold writes it (the ancestors are read from the OrganId, in Python) for each agency the
-- rollups name; a query's scope is `root = ? [AND level = ?]`.
CREATE TABLE stats_tree (
    agency  TEXT NOT NULL,
    root    TEXT NOT NULL,
    level   TEXT NOT NULL,
    PRIMARY KEY (root, level, agency)
);
CREATE INDEX stats_tree_agency ON stats_tree (agency);

-- The sums of `stats_daily` / `stats_monthly` over the agencies at `level` STRICTLY under `root`
-- (or every agency, root '*'); a root's own rows stay in the per-agency tables. The fold adds
-- each changed cell's difference to its ancestors' rows in the transaction that replaces the
-- cell; `lienthong stats rebuild` recomputes them by GROUP BY. A zero is not stored.
CREATE TABLE stats_subtree_daily (
    figure   TEXT NOT NULL,
    day      TEXT NOT NULL,
    root     TEXT NOT NULL,
    level    TEXT NOT NULL,
    counter  TEXT NOT NULL,
    value    BIGINT NOT NULL,
    PRIMARY KEY (figure, root, day, level, counter)
);
CREATE TABLE stats_subtree_monthly (
    figure   TEXT NOT NULL,
    month    TEXT NOT NULL,
    root     TEXT NOT NULL,
    level    TEXT NOT NULL,
    counter  TEXT NOT NULL,
    value    BIGINT NOT NULL,
    PRIMARY KEY (figure, root, month, level, counter)
);

-- The per-agency reads of a query (an agency's counters over a span, its running overdue sum,
-- whether it sent or received) seek (figure, agency, counter) and read the months in order
-- from the index alone; GROUP BY agency, counter then needs no sort.
DROP INDEX stats_monthly_agency;
CREATE INDEX stats_monthly_agency ON stats_monthly (figure, agency, counter, month, value);
DROP INDEX stats_daily_agency;
CREATE INDEX stats_daily_agency ON stats_daily (figure, agency, counter, day, value);

-- The queue by agency: the fold takes its cells in (figure, agency, day) order, and a rebuild
-- drops an agency's queued cells of a figure once it has recomputed them all.
CREATE INDEX stats_dirty_agency ON stats_dirty (figure, agency, day);

-- A document's attachments (its first verification reports): the fold and the rebuild look
-- them up by document; by the primary key (sha256, document) SQLite scanned every verification
-- report for each document sent instead.
CREATE INDEX stats_attachments_document ON stats_attachments (document, sha256);

-- The rollups stored before: every cell is queued again and the per-agency rows are emptied, so
-- the first fold recomputes each cell from the raw rows and adds it, from nothing, to its
-- ancestors' rows (the figures are empty until then, one fold interval on a small axis).
INSERT INTO stats_dirty (figure, day, agency)
    SELECT DISTINCT figure, day, agency FROM stats_daily WHERE true
    ON CONFLICT DO NOTHING;
DELETE FROM stats_daily;
DELETE FROM stats_monthly;
