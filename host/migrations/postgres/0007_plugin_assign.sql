-- A plugin's own identity may place records it writes: give them an owner in the
-- departments where it is enabled. The host lets it do so only for the objects the
-- plugin's approved `capabilities.assign` names, and only to members of the record's
-- department (or one below it), as form submissions routed round robin need.
UPDATE roles
SET permissions = '{"*":{"read":"department","create":"department","update":"department","admin":"department"}}'
WHERE name = 'plugin';
