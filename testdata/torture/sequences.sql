-- Sequences of every shape: types, bounds, cycles, caches, OWNED BY, identity columns.
CREATE SEQUENCE seq_small AS smallint INCREMENT BY -3 MINVALUE -100 MAXVALUE 10 START 10 CYCLE;
SELECT nextval('seq_small'), nextval('seq_small');
CREATE SEQUENCE seq_cached CACHE 20;
CREATE TABLE seq_owner (id bigint DEFAULT nextval('seq_cached'), b integer GENERATED ALWAYS AS IDENTITY (START 100 INCREMENT 5));
ALTER SEQUENCE seq_cached OWNED BY seq_owner.id;
INSERT INTO seq_owner DEFAULT VALUES;
INSERT INTO seq_owner DEFAULT VALUES;
CREATE SEQUENCE seq_never_used;
