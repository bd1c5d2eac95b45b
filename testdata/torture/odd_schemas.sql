-- Objects in schemas whose names need quoting, named the same in several schemas.
CREATE SCHEMA "Odd Schema";
CREATE SCHEMA "odd""quote";
CREATE SCHEMA "ünïcödé";
CREATE TABLE "Odd Schema".t (id serial PRIMARY KEY, "Value" text);
CREATE TABLE "odd""quote".t (id integer REFERENCES "Odd Schema".t, note text);
CREATE TABLE "ünïcödé"."Tä ble" (x integer);
CREATE FUNCTION "Odd Schema".f(t "Odd Schema".t) RETURNS text
    LANGUAGE sql IMMUTABLE AS 'SELECT $1."Value"';
CREATE AGGREGATE "odd""quote".agg(*) (SFUNC = int8inc, STYPE = int8, INITCOND = '0');
COMMENT ON AGGREGATE "odd""quote".agg(*) IS 'agg in an odd schema';
CREATE VIEW "ünïcödé".v AS SELECT "Odd Schema".f(t) AS value FROM "Odd Schema".t AS t;
CREATE TYPE "Odd Schema"."Mood" AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN "odd""quote".d AS "Odd Schema"."Mood" CHECK (VALUE <> 'sad');
INSERT INTO "Odd Schema".t ("Value") VALUES ('a'), ('b');
INSERT INTO "odd""quote".t VALUES (1, 'n');
INSERT INTO "ünïcödé"."Tä ble" VALUES (1);
