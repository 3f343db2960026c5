-- The standard fields the host has put in place, so that an upgrade adds the ones a
-- newer host brings exactly once and never brings back a field an admin removed.
CREATE TABLE seeded_fields (
    object TEXT NOT NULL,
    name   TEXT NOT NULL,
    PRIMARY KEY (object, name)
);
INSERT INTO seeded_fields (object, name)
SELECT f.object, f.name FROM object_fields f JOIN object_types o ON o.name = f.object
WHERE o.standard = 1;
