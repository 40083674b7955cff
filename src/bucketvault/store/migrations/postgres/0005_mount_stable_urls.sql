-- Cache-stable URLs (repeats within a window are byte-identical); a mount may turn them
-- off. Existing mounts get them: 1 is the default.
ALTER TABLE mounts ADD COLUMN cache_stable_urls integer NOT NULL DEFAULT 1;
