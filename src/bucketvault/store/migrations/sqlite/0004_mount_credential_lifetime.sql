-- A mount may accept URLs that live as long as the credential they carry (AZURE_SAS).
-- Existing mounts keep refusing them: 0 is the safe default.
ALTER TABLE mounts ADD COLUMN allow_credential_lifetime INTEGER NOT NULL DEFAULT 0;
