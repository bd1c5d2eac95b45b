-- Every way a routine, operator or cast is named, each with a comment and a grant so that
-- COMMENT ON, GRANT and (as the object's owner) ALTER ... OWNER TO all name it.

CREATE AGGREGATE sig_count(*) (SFUNC = int8inc, STYPE = int8, INITCOND = '0');
COMMENT ON AGGREGATE sig_count(*) IS 'zero-argument aggregate';
GRANT EXECUTE ON FUNCTION sig_count() TO PUBLIC;

CREATE AGGREGATE sig_count("any") (SFUNC = int8inc_any, STYPE = int8, INITCOND = '0');
COMMENT ON AGGREGATE sig_count("any") IS 'its one-argument overload';

CREATE FUNCTION sig_pick_final(internal, float8, anyelement) RETURNS anyelement
    LANGUAGE internal IMMUTABLE AS 'percentile_disc_final';
CREATE AGGREGATE sig_pick(float8 ORDER BY anyelement) (
    SFUNC = ordered_set_transition, STYPE = internal,
    FINALFUNC = sig_pick_final, FINALFUNC_EXTRA
);
COMMENT ON AGGREGATE sig_pick(float8 ORDER BY anyelement) IS 'ordered-set aggregate';

CREATE AGGREGATE sig_rank(VARIADIC "any" ORDER BY VARIADIC "any") (
    SFUNC = ordered_set_transition_multi, STYPE = internal,
    FINALFUNC = rank_final, FINALFUNC_EXTRA, HYPOTHETICAL
);
COMMENT ON AGGREGATE sig_rank(VARIADIC "any" ORDER BY VARIADIC "any") IS 'hypothetical-set';

CREATE FUNCTION sig_join(sep text, VARIADIC parts text[]) RETURNS text
    LANGUAGE sql IMMUTABLE AS 'SELECT array_to_string(parts, sep)';
COMMENT ON FUNCTION sig_join(text, VARIADIC text[]) IS 'variadic';
REVOKE ALL ON FUNCTION sig_join(text, VARIADIC text[]) FROM PUBLIC;

CREATE FUNCTION sig_split(IN s text, OUT head text, OUT tail text)
    LANGUAGE sql IMMUTABLE AS 'SELECT split_part(s, '','', 1), split_part(s, '','', 2)';
COMMENT ON FUNCTION sig_split(text) IS 'OUT arguments are not part of a function''s identity';

CREATE FUNCTION "Sig Odd"("A b" integer, "c""d" text DEFAULT 'x') RETURNS integer
    LANGUAGE sql IMMUTABLE AS 'SELECT 1';
COMMENT ON FUNCTION "Sig Odd"(integer, text) IS 'quoted names and a default';

-- A prefix operator (no left argument) and an infix one.
CREATE FUNCTION sig_negate(integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT -$1';
CREATE OPERATOR ~~~ (RIGHTARG = integer, FUNCTION = sig_negate);
COMMENT ON OPERATOR ~~~ (NONE, integer) IS 'prefix';
CREATE FUNCTION sig_cat(text, integer) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT $1 || $2';
CREATE OPERATOR ||| (LEFTARG = text, RIGHTARG = integer, FUNCTION = sig_cat);
COMMENT ON OPERATOR ||| (text, integer) IS 'infix';

-- A cast between user types.
CREATE TYPE sig_celsius AS (degrees numeric);
CREATE TYPE sig_kelvin AS (degrees numeric);
CREATE FUNCTION sig_to_kelvin(sig_celsius) RETURNS sig_kelvin
    LANGUAGE sql IMMUTABLE AS 'SELECT ROW(($1).degrees + 273.15)::sig_kelvin';
CREATE CAST (sig_celsius AS sig_kelvin) WITH FUNCTION sig_to_kelvin(sig_celsius);
COMMENT ON CAST (sig_celsius AS sig_kelvin) IS 'a cast';

CREATE TABLE sig_uses (t text);
INSERT INTO sig_uses VALUES (sig_join(',', 'a', 'b'));
