-- 0007: webhook secrets and axis-link tokens sealed at rest (AES-256-GCM, the key outside the
-- database, as for VDXP secrets). `sealed` = 1: the column holds `v1:` + base64 ciphertext
-- bound to the row; 0: plaintext written before this migration. The server seals such rows
-- at start-up (server.delivery.seal_route_secrets); until then they are read as they are.
ALTER TABLE webhooks ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE axis_links ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
