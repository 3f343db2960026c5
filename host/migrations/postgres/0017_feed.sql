-- The activity feed reads the audit trail newest first, per object (and by actor).
CREATE INDEX audit_log_object ON audit_log (object, id);
CREATE INDEX audit_log_actor ON audit_log (actor_id, id);
