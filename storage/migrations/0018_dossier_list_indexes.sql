-- An agency's dossier lists (storage/repos/dossiers.py DossierRepo.page) walk each side in
-- code order, the dossiers it received and those it must process, and merge the two: one
-- ordered index per side, and per side a partial one over the open dossiers for the overdue
-- list (bench/dossier_bench.py: with the OR of the two sides SQLite read every dossier of the
-- agency and sorted them, 291 ms p99 over 1 million dossiers).
CREATE INDEX dossiers_unit_code ON dossiers (receiving_unit, code);
CREATE INDEX dossiers_open_unit ON dossiers (receiving_unit, code)
    WHERE status NOT IN (3, 7, 8, 9, 10);
CREATE INDEX dossiers_open_agency ON dossiers (agency, code)
    WHERE status NOT IN (3, 7, 8, 9, 10);
