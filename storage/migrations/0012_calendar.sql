-- 0012: the working-day calendar's override table (issue 16, server/calendar/).
--
-- calendar_overrides: days an admin decided (`lienthong calendar off|on`) when the Government
-- announced a schedule: working = 0 a day off (a holiday the `holidays` package lacks, a
-- swapped weekday), working = 1 a working day (a make-up Saturday, or a day the package has but
-- the Government did not confirm). One row per day (YYYY-MM-DD, the local date); an edit
-- replaces the row. Above the package's VN calendar and the corrections shipped in
-- server/calendar/vn_overrides.json: a row here always wins.
CREATE TABLE calendar_overrides (
    day         TEXT PRIMARY KEY,
    working     INTEGER NOT NULL CHECK (working IN (0, 1)),
    name        TEXT NOT NULL,
    source      TEXT,
    changed_by  TEXT NOT NULL,
    changed_at  TEXT NOT NULL
);

-- One row: bumped by every edit, so a server notices an edit made by another process (the CLI)
-- with one small read and reloads the overrides only then.
CREATE TABLE calendar_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  INTEGER NOT NULL
);
INSERT INTO calendar_state (id, generation) VALUES (1, 0);
