-- 0036: the dashboard's monthly rollups: the sums of `stats_daily` per (figure, month, agency,
-- counter), refreshed by the fold for the months of the cells it folds, so that a year's query
-- reads twelve rows per agency and counter rather than 365 (docs/dashboard.md, "Rollups").
CREATE TABLE stats_monthly (
    figure   TEXT NOT NULL,
    month    TEXT NOT NULL,
    agency   TEXT NOT NULL,
    counter  TEXT NOT NULL,
    value    BIGINT NOT NULL,
    PRIMARY KEY (figure, month, agency, counter)
);
CREATE INDEX stats_monthly_agency ON stats_monthly (figure, agency, month);

INSERT INTO stats_monthly (figure, month, agency, counter, value)
    SELECT figure, substr(day, 1, 7), agency, counter, SUM(value) FROM stats_daily
    GROUP BY figure, substr(day, 1, 7), agency, counter HAVING SUM(value) != 0;

-- Every agency the rollups name (a feedback's competent agency may be hosted elsewhere, so not
-- in `agencies`): what a query's scope is chosen from, without scanning the rollups.
CREATE TABLE stats_agencies (
    agency  TEXT PRIMARY KEY
);
INSERT OR IGNORE INTO stats_agencies SELECT DISTINCT agency FROM stats_daily;
