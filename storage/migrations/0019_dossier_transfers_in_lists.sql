-- 0019: a dossier transferred in (one-stop liên thông, issue 16) is one of the receiving
-- agency's dossiers: DossierRepo.page reads its 'in' transfers with a second query beside the
-- UNION of migration 0018 and merges them (docs/dossiers.md, "Across agencies"). The two filters
-- the list applies to columns get columns of their own, filled at arrival from ho-so.json: the
-- procedure's code and the dossier's reception (UTC, storage/ids.py to_db_time; rows stored
-- before this migration keep whole seconds). The query walks an index in code order and stops
-- at the page: one index over an agency's 'in' transfers, one over its open ones for the
-- overdue list (final statuses as literals, as in 0018).
ALTER TABLE dossier_transfers ADD COLUMN procedure TEXT NOT NULL DEFAULT '';
ALTER TABLE dossier_transfers ADD COLUMN received_at TEXT NOT NULL DEFAULT '';
UPDATE dossier_transfers SET
    procedure = COALESCE(json_extract(body, '$.procedure.code'), ''),
    received_at = COALESCE(
        strftime('%Y-%m-%dT%H:%M:%S.000000Z', json_extract(body, '$.received_at')), ''
    );
CREATE INDEX dossier_transfers_in_code ON dossier_transfers (agency, dossier)
    WHERE direction = 'in';
CREATE INDEX dossier_transfers_in_open ON dossier_transfers (agency, dossier)
    WHERE direction = 'in' AND status NOT IN (3, 7, 8, 9, 10);
