-- A copy by email of the host's notifications, when SMTP is configured and the user
-- wants one: `email_status` NULL (none), pending, sending, sent or failed;
-- `email_after` is when a pending copy may be tried again (after a failure) or a
-- `sending` one left by a stopped host is taken up again.
ALTER TABLE notifications ADD COLUMN email_status TEXT;
ALTER TABLE notifications ADD COLUMN email_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN email_after TEXT;
ALTER TABLE notifications ADD COLUMN email_error TEXT;
CREATE INDEX notifications_email_due ON notifications (email_after)
    WHERE email_status IN ('pending', 'sending');
-- 1: the user wants their notifications by email too (the default).
ALTER TABLE users ADD COLUMN email_notifications INTEGER NOT NULL DEFAULT 1;
