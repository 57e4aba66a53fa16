-- Keys listed through the API (issue 13) say when each was last used (written at most once a
-- minute per key and server).
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;
