-- How the user last signed in ("email", "sms" or "whatsapp"), so the app can enrol that
-- channel as their Authsignal authenticator when it finds none. '' for older rows.
ALTER TABLE users ADD COLUMN last_sign_in_method TEXT NOT NULL DEFAULT '';
