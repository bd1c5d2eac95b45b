-- Inheritance children and the NOT NULL constraints they declare or only inherit (PostgreSQL 18
-- records which: conislocal on the child's NOT NULL constraint).
CREATE TABLE inh_parent (a integer NOT NULL, b text);
-- Declares the parent's column itself, without NOT NULL: the constraint is only inherited.
CREATE TABLE inh_declares (a integer, c integer) INHERITS (inh_parent);
-- Declares it NOT NULL itself: the constraint is its own as well as inherited.
CREATE TABLE inh_own_not_null (a integer NOT NULL, d integer) INHERITS (inh_parent);
-- NOT NULL on an inherited column that the parent leaves nullable.
CREATE TABLE inh_child_only (e integer) INHERITS (inh_parent);
ALTER TABLE inh_child_only ALTER COLUMN b SET NOT NULL;
-- Two parents sharing a NOT NULL column, and a grandchild.
CREATE TABLE inh_other (a integer NOT NULL, f text);
CREATE TABLE inh_two (g integer) INHERITS (inh_parent, inh_other);
CREATE TABLE inh_grandchild () INHERITS (inh_declares);
INSERT INTO inh_parent VALUES (1, 'p');
INSERT INTO inh_declares VALUES (2, 'd', 20);
INSERT INTO inh_own_not_null VALUES (3, 'o', 30);
INSERT INTO inh_child_only VALUES (4, 'c', 40);
INSERT INTO inh_two VALUES (5, 't', 'f', 50);
INSERT INTO inh_grandchild VALUES (6, 'g', 60);
