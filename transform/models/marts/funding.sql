/*
doc = "Funding of the quarter (the rows of its year and quarter, as known now), per county and summed over a city's counties and the province: total, per capita, the in-budget share, and legal-aid money per legal-aid case accepted in the quarter (a city's city-level cases included)."
depends = ["grid", "funding_current", "counties", "population_q", "cases"]
indicators = [
  "funding.total_yuan", "funding.per_capita_yuan", "funding.in_budget_share",
  "funding.legal_aid_per_case_yuan",
]

[columns]
q = "Quarter number"
quarter = "Quarter label"
scope = "county, city or province"
code = "Scope code"
indicator = "Indicator id"
value = "The value"
numerator = "Yuan"
denominator = "Divided by"

[[tests]]
unique = ["q", "scope", "code", "indicator"]
*/
WITH rows_q AS (
  SELECT f.year * 4 + f.quarter - 1 AS q, k.code AS county_code, k.city_code,
    f.amount_yuan, f.in_budget, f.program
  FROM funding_current f JOIN counties k ON k.code = f.county_code
),
scoped AS (
  SELECT q, 'county' AS scope, county_code AS code, amount_yuan, in_budget, program FROM rows_q
  UNION ALL SELECT q, 'city' AS scope, city_code AS code, amount_yuan, in_budget, program FROM rows_q
  UNION ALL SELECT q, 'province' AS scope, '410000' AS code, amount_yuan, in_budget, program FROM rows_q
),
agg AS (
  SELECT q, scope, code,
    sum(amount_yuan) AS total,
    sum(CASE WHEN in_budget THEN amount_yuan ELSE CAST(0 AS DECIMAL(18, 2)) END) AS in_budget,
    sum(CASE WHEN program = 'legal_aid' THEN amount_yuan ELSE CAST(0 AS DECIMAL(18, 2)) END) AS legal_aid
  FROM scoped GROUP BY q, scope, code
),
w AS (
  SELECT g.q, g.quarter, g.scope, g.code,
    CAST(coalesce(a.total, CAST(0 AS DECIMAL(18, 2))) AS DOUBLE) AS total,
    CAST(coalesce(a.in_budget, CAST(0 AS DECIMAL(18, 2))) AS DOUBLE) AS in_budget,
    CAST(coalesce(a.legal_aid, CAST(0 AS DECIMAL(18, 2))) AS DOUBLE) AS legal_aid,
    p.population,
    c.value AS legal_aid_cases
  FROM grid g
  LEFT JOIN agg a ON a.q = g.q AND a.scope = g.scope AND a.code = g.code
  LEFT JOIN population_q p ON p.q = g.q AND p.scope = g.scope AND p.code = g.code
  LEFT JOIN cases c ON c.q = g.q AND c.scope = g.scope AND c.code = g.code
    AND c.indicator = 'cases.accepted.legal_aid'
)
-- One pass over w (a UNION ALL of one SELECT per indicator would compute w once per branch).
SELECT w.q, w.quarter, w.scope, w.code, i.indicator,
  CASE i.indicator
    WHEN 'funding.total_yuan' THEN total
    WHEN 'funding.per_capita_yuan' THEN ratio(total, population)
    WHEN 'funding.in_budget_share' THEN ratio(in_budget, total)
    WHEN 'funding.legal_aid_per_case_yuan' THEN ratio(legal_aid, legal_aid_cases)
  END AS value,
  CASE i.indicator
    WHEN 'funding.per_capita_yuan' THEN total
    WHEN 'funding.in_budget_share' THEN in_budget
    WHEN 'funding.legal_aid_per_case_yuan' THEN legal_aid
  END AS numerator,
  CASE i.indicator
    WHEN 'funding.per_capita_yuan' THEN population
    WHEN 'funding.in_budget_share' THEN total
    WHEN 'funding.legal_aid_per_case_yuan' THEN legal_aid_cases
  END AS denominator
FROM w CROSS JOIN (SELECT column1 AS indicator FROM (VALUES ('funding.total_yuan'), ('funding.per_capita_yuan'), ('funding.in_budget_share'), ('funding.legal_aid_per_case_yuan'))) i
