-- 0021: the due date of a dossier after each of its events (issue 16, DVCQG sync).
--
-- `dossier_events.due_at` is the dossier's due date as the event left it: the intake's due
-- date, the same after most moves, moved by the working time of the pause on a 5→4 move, the
-- new date on an apology. The DVCQG forms need the dates a supplement moved
-- (`NgayHenTraTruoc`, `NgayHenTraMoi`) and the date each progress step was judged by
-- (`NgayKetThucTheoQuyDinh`). NULL for events recorded before this migration and for the
-- events of a transferred copy (dossier_transfer_events are another table).
ALTER TABLE dossier_events ADD COLUMN due_at TEXT;
