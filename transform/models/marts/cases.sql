/*
doc = "Case indicators (F3), each case at its current row: accepted per type, mediation success, migrant workers' legal aid and wages recovered, cases per 10k residents."
depends = ["stg_cases", "grid", "population_q"]
indicators = [
  "cases.accepted.mediation", "cases.accepted.notarization", "cases.accepted.legal_aid",
  "cases.accepted.judicial_appraisal", "cases.mediation_success_rate", "cases.migrant_legal_aid",
  "cases.wage_recovered_yuan", "cases.per_10k",
]

[columns]
q = "Quarter number"
quarter = "Quarter label"
scope = "county, city or province"
code = "Scope code"
indicator = "Indicator id"
value = "The value"
numerator = "Counted or summed"
denominator = "Divided by"

[[tests]]
unique = ["q", "scope", "code", "indicator"]
*/
-- Counts and sums add up, so the cases are counted once per quarter and place, and those
-- counts are then added up per scope (not every case three times).
WITH by_place AS (
  SELECT accepted_q, closed_q, county_code, city_code, in_province,
    count(*) AS all_cases,
    sum(CASE WHEN case_type = 'mediation' THEN 1 ELSE 0 END) AS mediation,
    sum(CASE WHEN case_type = 'notarization' THEN 1 ELSE 0 END) AS notarization,
    sum(CASE WHEN case_type = 'legal_aid' THEN 1 ELSE 0 END) AS legal_aid,
    sum(CASE WHEN case_type = 'judicial_appraisal' THEN 1 ELSE 0 END) AS judicial_appraisal,
    sum(CASE WHEN case_type = 'legal_aid' AND migrant_worker THEN 1 ELSE 0 END) AS migrant_legal_aid,
    sum(CASE WHEN case_type = 'mediation' AND outcome = 'success' THEN 1 ELSE 0 END) AS success,
    sum(CASE WHEN case_type = 'mediation' AND outcome IN ('success', 'failed') THEN 1 ELSE 0 END) AS decided,
    sum(CASE WHEN case_type = 'legal_aid' AND migrant_worker THEN amount ELSE CAST(0 AS DECIMAL(18, 2)) END) AS wages
  FROM stg_cases
  GROUP BY accepted_q, closed_q, county_code, city_code, in_province
),
scoped AS (
  SELECT b.*, s.scope,
    CASE s.scope WHEN 'county' THEN b.county_code WHEN 'city' THEN b.city_code ELSE '410000' END AS code
  FROM by_place b
  CROSS JOIN (SELECT column1 AS scope FROM (VALUES ('county'), ('city'), ('province'))) s
  WHERE CASE s.scope
    WHEN 'county' THEN b.county_code IS NOT NULL
    WHEN 'city' THEN b.city_code IS NOT NULL
    ELSE b.in_province
  END
),
accepted AS (
  SELECT accepted_q AS q, scope, code,
    sum(all_cases) AS all_cases,
    sum(mediation) AS mediation,
    sum(notarization) AS notarization,
    sum(legal_aid) AS legal_aid,
    sum(judicial_appraisal) AS judicial_appraisal,
    sum(migrant_legal_aid) AS migrant_legal_aid
  FROM scoped GROUP BY accepted_q, scope, code
),
closed AS (
  SELECT closed_q AS q, scope, code,
    sum(success) AS success,
    sum(decided) AS decided,
    sum(wages) AS wages
  FROM scoped WHERE closed_q IS NOT NULL GROUP BY closed_q, scope, code
),
w AS (
  SELECT g.q, g.quarter, g.scope, g.code,
    CAST(coalesce(a.all_cases, 0) AS DOUBLE) AS all_cases,
    CAST(coalesce(a.mediation, 0) AS DOUBLE) AS mediation,
    CAST(coalesce(a.notarization, 0) AS DOUBLE) AS notarization,
    CAST(coalesce(a.legal_aid, 0) AS DOUBLE) AS legal_aid,
    CAST(coalesce(a.judicial_appraisal, 0) AS DOUBLE) AS judicial_appraisal,
    CAST(coalesce(a.migrant_legal_aid, 0) AS DOUBLE) AS migrant_legal_aid,
    CAST(coalesce(c.success, 0) AS DOUBLE) AS success,
    CAST(coalesce(c.decided, 0) AS DOUBLE) AS decided,
    CAST(coalesce(c.wages, CAST(0 AS DECIMAL(18, 2))) AS DOUBLE) AS wages,
    p.population
  FROM grid g
  LEFT JOIN accepted a ON a.q = g.q AND a.scope = g.scope AND a.code = g.code
  LEFT JOIN closed c ON c.q = g.q AND c.scope = g.scope AND c.code = g.code
  LEFT JOIN population_q p ON p.q = g.q AND p.scope = g.scope AND p.code = g.code
)
-- One pass over w (a UNION ALL of one SELECT per indicator would compute w once per branch).
SELECT w.q, w.quarter, w.scope, w.code, i.indicator,
  CASE i.indicator
    WHEN 'cases.accepted.mediation' THEN mediation
    WHEN 'cases.accepted.notarization' THEN notarization
    WHEN 'cases.accepted.legal_aid' THEN legal_aid
    WHEN 'cases.accepted.judicial_appraisal' THEN judicial_appraisal
    WHEN 'cases.mediation_success_rate' THEN ratio(success, decided)
    WHEN 'cases.migrant_legal_aid' THEN migrant_legal_aid
    WHEN 'cases.wage_recovered_yuan' THEN wages
    WHEN 'cases.per_10k' THEN ratio(all_cases, population) * 10000.0
  END AS value,
  CASE i.indicator
    WHEN 'cases.mediation_success_rate' THEN success
    WHEN 'cases.per_10k' THEN all_cases
  END AS numerator,
  CASE i.indicator
    WHEN 'cases.mediation_success_rate' THEN decided
    WHEN 'cases.per_10k' THEN population
  END AS denominator
FROM w CROSS JOIN (SELECT column1 AS indicator FROM (VALUES
  ('cases.accepted.mediation'), ('cases.accepted.notarization'), ('cases.accepted.legal_aid'),
  ('cases.accepted.judicial_appraisal'), ('cases.mediation_success_rate'), ('cases.migrant_legal_aid'),
  ('cases.wage_recovered_yuan'), ('cases.per_10k'))) i
