-- 0002: the national axis protocol (VDXP, issue 5): agency credentials, transport state of
-- pulled items, and units registered through registerAgency.

-- One VDXP system id per agency. The secret is kept encrypted (AES-GCM, key outside the
-- database): the axis must compute the HMAC itself, so a one-way hash would not do.
CREATE TABLE vdxp_credentials (
    organ_id           TEXT PRIMARY KEY REFERENCES agencies (organ_id),
    system_id          TEXT NOT NULL UNIQUE,
    secret_ciphertext  TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    rotated_at         TEXT
);

-- updateStatus of a pulled item: processing / fail (it stays in getReceivedEdocList) or done
-- (the delivery is acknowledged). A transport acknowledgement, not a business status.
CREATE TABLE vdxp_transport (
    delivery_id  TEXT PRIMARY KEY REFERENCES deliveries (id),
    state        TEXT NOT NULL CHECK (state IN ('processing', 'fail', 'done')),
    updated_at   TEXT NOT NULL
);

-- Units an agency registered under itself with registerAgency; deleteAgency marks them
-- deleted (they disappear from getAgenciesList; getSynchronizeUnit reports deleted = true).
CREATE TABLE vdxp_registrations (
    organ_id       TEXT PRIMARY KEY REFERENCES agencies (organ_id),
    registered_by  TEXT NOT NULL REFERENCES agencies (organ_id),
    registered_at  TEXT NOT NULL,
    deleted_at     TEXT
);
CREATE INDEX vdxp_registrations_by ON vdxp_registrations (registered_by);
