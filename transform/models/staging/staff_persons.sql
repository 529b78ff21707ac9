/*
doc = "Distinct persons per quarter, scope and role as of each quarter's last day: a person serving several places counts in each, and once per larger scope. What the staffing mart counts, computed once (the mart reads it twice)."
depends = ["stg_staff_q"]

[columns]
q = "Quarter number"
scope = "county, city or province"
code = "Scope code"
mediators = "Distinct mediators"
full_time_mediators = "Distinct mediators with a full-time row"
lawyers = "Distinct lawyers"
advisers = "Distinct village legal advisers"
notaries = "Distinct notaries"

[[tests]]
unique = ["q", "scope", "code"]
[[tests]]
not_null = ["q", "scope", "code"]
*/
-- Each person once per quarter, scope and role (full-time if any of their rows is), then counted:
-- one grouping instead of a DISTINCT count per role.
WITH people AS (
  SELECT s.q, sc.scope,
    CASE sc.scope WHEN 'county' THEN s.county_code WHEN 'city' THEN s.city_code ELSE '410000' END AS code,
    s.role, s.staff_id, bool_or(coalesce(s.full_time, false)) AS full_time
  FROM stg_staff_q s
  CROSS JOIN (SELECT column1 AS scope FROM (VALUES ('county'), ('city'), ('province'))) sc
  WHERE s.role IN ('mediator', 'lawyer', 'village_legal_adviser', 'notary')
    AND CASE sc.scope
      WHEN 'county' THEN s.county_code IS NOT NULL
      WHEN 'city' THEN s.city_code IS NOT NULL
      ELSE true
    END
  GROUP BY 1, 2, 3, 4, 5
)
SELECT q, scope, code,
  sum(CASE WHEN role = 'mediator' THEN 1 ELSE 0 END) AS mediators,
  sum(CASE WHEN role = 'mediator' AND full_time THEN 1 ELSE 0 END) AS full_time_mediators,
  sum(CASE WHEN role = 'lawyer' THEN 1 ELSE 0 END) AS lawyers,
  sum(CASE WHEN role = 'village_legal_adviser' THEN 1 ELSE 0 END) AS advisers,
  sum(CASE WHEN role = 'notary' THEN 1 ELSE 0 END) AS notaries
FROM people
GROUP BY q, scope, code
