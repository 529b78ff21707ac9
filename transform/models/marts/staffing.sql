/*
doc = "Staffing as of each quarter's last day E, from the staff snapshot chosen for the quarter: distinct persons with an active row of the role in the scope (a person serving several places counts in each, and once per larger scope). Null without a snapshot."
depends = ["grid", "snapshots_q", "staff_persons", "population_q"]
indicators = [
  "staff.mediators", "staff.full_time_mediator_share", "staff.lawyers_per_10k",
  "staff.village_advisers", "staff.notary_blank",
]

[columns]
q = "Quarter number"
quarter = "Quarter label"
scope = "county, city or province"
code = "Scope code"
indicator = "Indicator id"
value = "The value; null without a snapshot"
numerator = "Persons (or counties without a notary)"
denominator = "Divided by"

[[tests]]
unique = ["q", "scope", "code", "indicator"]
*/
-- Counties as units for notary_blank: 1 when the county has no active notary.
WITH blank AS (
  SELECT g.q, g.code, g.city_code,
    CASE WHEN coalesce(p.notaries, 0) = 0 THEN 1 ELSE 0 END AS blank
  FROM grid g LEFT JOIN staff_persons p ON p.q = g.q AND p.scope = 'county' AND p.code = g.code
  WHERE g.scope = 'county'
),
blank_agg AS (
  SELECT q, scope, code, count(*) AS counties, sum(blank) AS blank
  FROM (
    SELECT b.q, sc.scope,
      CASE sc.scope WHEN 'county' THEN b.code WHEN 'city' THEN b.city_code ELSE '410000' END AS code,
      b.blank
    FROM blank b
    CROSS JOIN (SELECT column1 AS scope FROM (VALUES ('county'), ('city'), ('province'))) sc
  ) u GROUP BY q, scope, code
),
w AS (
  SELECT g.q, g.quarter, g.scope, g.code, sq.has_staff,
    CAST(coalesce(p.mediators, 0) AS DOUBLE) AS mediators,
    CAST(coalesce(p.full_time_mediators, 0) AS DOUBLE) AS full_time_mediators,
    CAST(coalesce(p.lawyers, 0) AS DOUBLE) AS lawyers,
    CAST(coalesce(p.advisers, 0) AS DOUBLE) AS advisers,
    CAST(coalesce(b.counties, 0) AS DOUBLE) AS counties,
    CAST(coalesce(b.blank, 0) AS DOUBLE) AS blank,
    pop.population
  FROM grid g
  JOIN snapshots_q sq ON sq.q = g.q
  LEFT JOIN staff_persons p ON p.q = g.q AND p.scope = g.scope AND p.code = g.code
  LEFT JOIN blank_agg b ON b.q = g.q AND b.scope = g.scope AND b.code = g.code
  LEFT JOIN population_q pop ON pop.q = g.q AND pop.scope = g.scope AND pop.code = g.code
)
-- One pass over w (a UNION ALL of one SELECT per indicator would compute w once per branch).
SELECT w.q, w.quarter, w.scope, w.code, i.indicator,
  CASE i.indicator
    WHEN 'staff.mediators' THEN CASE WHEN has_staff THEN mediators END
    WHEN 'staff.full_time_mediator_share' THEN CASE WHEN has_staff THEN ratio(full_time_mediators, mediators) END
    WHEN 'staff.lawyers_per_10k' THEN CASE WHEN has_staff THEN ratio(lawyers, population) * 10000.0 END
    WHEN 'staff.village_advisers' THEN CASE WHEN has_staff THEN advisers END
    WHEN 'staff.notary_blank' THEN CASE WHEN has_staff THEN ratio(blank, counties) END
  END AS value,
  CASE i.indicator
    WHEN 'staff.full_time_mediator_share' THEN CASE WHEN has_staff THEN full_time_mediators END
    WHEN 'staff.lawyers_per_10k' THEN CASE WHEN has_staff THEN lawyers END
    WHEN 'staff.notary_blank' THEN CASE WHEN has_staff THEN blank END
  END AS numerator,
  CASE i.indicator
    WHEN 'staff.full_time_mediator_share' THEN CASE WHEN has_staff THEN mediators END
    WHEN 'staff.lawyers_per_10k' THEN CASE WHEN has_staff THEN population END
    WHEN 'staff.notary_blank' THEN CASE WHEN has_staff THEN counties END
  END AS denominator
FROM w CROSS JOIN (SELECT column1 AS indicator FROM (VALUES ('staff.mediators'), ('staff.full_time_mediator_share'), ('staff.lawyers_per_10k'), ('staff.village_advisers'), ('staff.notary_blank'))) i
