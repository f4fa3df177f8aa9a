-- Devices (GET /v1/users/{userId}/devices): when a challenge last succeeded on one and how,
-- when it was invalidated (it counts as new again until a challenge succeeds on it), and
-- until when it is remembered.
ALTER TABLE seen_devices ADD COLUMN authenticated_at INTEGER;
ALTER TABLE seen_devices ADD COLUMN last_verification_method TEXT NOT NULL DEFAULT '';
ALTER TABLE seen_devices ADD COLUMN invalidated_at INTEGER;
ALTER TABLE seen_devices ADD COLUMN remembered_until INTEGER;
