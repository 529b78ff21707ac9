/*
doc = "Every quarter recomputed by this run × every scope: the rows each indicator has, before it picks the scopes that apply to it. A full run takes every quarter; an incremental one the quarters from run_params.from_q on."
depends = ["quarters", "scopes", "run_params"]

[columns]
q = "Quarter number"
quarter = "Quarter label"
last_day = "The quarter's last day E"
scope = "county, city or province"
code = "Scope code"
city_code = "The city of a county; a city's own code"
county_kind = "A county's kind"

[[tests]]
unique = ["q", "scope", "code"]
*/
SELECT q.q, q.quarter, q.last_day, s.scope, s.code, s.city_code, s.county_kind
FROM quarters q CROSS JOIN scopes s
WHERE q.q >= (SELECT from_q FROM run_params)
