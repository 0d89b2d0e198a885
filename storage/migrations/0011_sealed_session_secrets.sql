-- 0011: the JWT secrets of signing sessions sealed at rest (AES-256-GCM with the axis's secrets
-- key, as webhook secrets since 0007). `jwt_sealed` = 1: `jwt_secret` holds `v1:` + base64
-- ciphertext bound to the session; 0: the hex secret in plain text, written before this
-- migration. The server seals such rows at start-up (server/exchange/delivery.py startup_jobs);
-- until then they are read as they are.
ALTER TABLE signing_sessions ADD COLUMN jwt_sealed INTEGER NOT NULL DEFAULT 0;
