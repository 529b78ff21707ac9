/*
doc = "Coverage as of each quarter's last day E, from the platforms snapshot chosen for the quarter (advisers: the staff snapshot). A center is a platform of the scope's own level on the scope's code, built by E and operating. Rates are units with the thing / units: counties, cities, townships or villages of the scope (for notary_settled and equipment_complete a city also counts itself). Null without a snapshot."
depends = ["grid", "snapshots_q", "stg_platforms_q", "stg_staff_q", "townships", "villages", "counties"]
indicators = [
  "coverage.county_center", "coverage.city_center", "coverage.township_build_rate",
  "coverage.township_operating_rate", "coverage.village_build_rate", "coverage.village_adviser_rate",
  "coverage.notary_settled", "coverage.equipment_complete",
]

[columns]
q = "Quarter number"
quarter = "Quarter label"
scope = "county, city or province (city_center: city and province)"
code = "Scope code"
indicator = "Indicator id"
value = "The value; null without a snapshot, or without units"
numerator = "Units with the thing"
denominator = "Units"

[[tests]]
unique = ["q", "scope", "code", "indicator"]
*/
WITH centers AS (
  SELECT q, level, division_code,
    max(CASE WHEN notary THEN 1 ELSE 0 END) AS notary,
    max(CASE WHEN equipped THEN 1 ELSE 0 END) AS equipped
  FROM stg_platforms_q
  WHERE level IN ('county', 'city') AND built AND operating
  GROUP BY q, level, division_code
),
-- Counties and cities as units: whether each has a center, a notary in one, full equipment.
seats AS (
  SELECT g.q, g.scope AS level, g.code, g.city_code,
    CASE WHEN c.division_code IS NULL THEN 0 ELSE 1 END AS center,
    coalesce(c.notary, 0) AS notary,
    coalesce(c.equipped, 0) AS equipped
  FROM grid g
  JOIN snapshots_q sq ON sq.q = g.q AND sq.has_platforms
  LEFT JOIN centers c ON c.q = g.q AND c.level = g.scope AND c.division_code = g.code
  WHERE g.scope IN ('county', 'city')
),
-- Each unit under each scope it counts in, in one pass over the units (a UNION ALL of one
-- SELECT per scope would compute the units once per branch).
seat_scoped AS (
  SELECT s.q, sc.scope,
    CASE sc.scope WHEN 'county' THEN s.code WHEN 'city' THEN s.city_code ELSE '410000' END AS code,
    s.level, s.center, s.notary, s.equipped
  FROM seats s
  CROSS JOIN (SELECT column1 AS scope FROM (VALUES ('county'), ('city'), ('province'))) sc
  WHERE sc.scope <> 'county' OR s.level = 'county'
),
seat_agg AS (
  SELECT q, scope, code,
    sum(CASE WHEN level = 'county' THEN 1 ELSE 0 END) AS counties,
    sum(CASE WHEN level = 'county' THEN center ELSE 0 END) AS county_centers,
    sum(CASE WHEN level = 'city' THEN 1 ELSE 0 END) AS cities,
    sum(CASE WHEN level = 'city' THEN center ELSE 0 END) AS city_centers,
    count(*) AS seats,
    sum(notary) AS notary,
    sum(equipped) AS equipped
  FROM seat_scoped GROUP BY q, scope, code
),
township_units AS (
  SELECT sq.q, t.code, t.county_code, k.city_code,
    max(CASE WHEN p.built THEN 1 ELSE 0 END) AS built,
    max(CASE WHEN p.built AND p.operating THEN 1 ELSE 0 END) AS operating
  FROM snapshots_q sq
  CROSS JOIN townships t
  JOIN counties k ON k.code = t.county_code
  LEFT JOIN stg_platforms_q p ON p.q = sq.q AND p.level = 'township' AND p.division_code = t.code
  WHERE sq.has_platforms
  GROUP BY sq.q, t.code, t.county_code, k.city_code
),
township_agg AS (
  SELECT q, scope, code, count(*) AS townships, sum(built) AS built, sum(operating) AS operating
  FROM (
    SELECT t.q, sc.scope,
      CASE sc.scope WHEN 'county' THEN t.county_code WHEN 'city' THEN t.city_code ELSE '410000' END AS code,
      t.built, t.operating
    FROM township_units t
    CROSS JOIN (SELECT column1 AS scope FROM (VALUES ('county'), ('city'), ('province'))) sc
  ) u GROUP BY q, scope, code
),
advisers AS (
  SELECT DISTINCT q, division_code FROM stg_staff_q WHERE role = 'village_legal_adviser'
),
village_units AS (
  SELECT sq.q, v.code, t.county_code, k.city_code, sq.has_platforms, sq.has_staff,
    max(CASE WHEN p.built THEN 1 ELSE 0 END) AS built,
    max(CASE WHEN a.division_code IS NULL THEN 0 ELSE 1 END) AS adviser
  FROM snapshots_q sq
  CROSS JOIN villages v
  JOIN townships t ON t.code = v.township_code
  JOIN counties k ON k.code = t.county_code
  LEFT JOIN stg_platforms_q p ON p.q = sq.q AND p.level = 'village' AND p.division_code = v.code
  LEFT JOIN advisers a ON a.q = sq.q AND a.division_code = v.code
  GROUP BY sq.q, v.code, t.county_code, k.city_code, sq.has_platforms, sq.has_staff
),
village_agg AS (
  SELECT q, scope, code, count(*) AS villages, sum(built) AS built, sum(adviser) AS adviser
  FROM (
    SELECT v.q, sc.scope,
      CASE sc.scope WHEN 'county' THEN v.county_code WHEN 'city' THEN v.city_code ELSE '410000' END AS code,
      v.built, v.adviser
    FROM village_units v
    CROSS JOIN (SELECT column1 AS scope FROM (VALUES ('county'), ('city'), ('province'))) sc
  ) u GROUP BY q, scope, code
),
w AS (
  SELECT g.q, g.quarter, g.scope, g.code, sq.has_platforms, sq.has_staff,
    CAST(coalesce(s.counties, 0) AS DOUBLE) AS counties,
    CAST(coalesce(s.county_centers, 0) AS DOUBLE) AS county_centers,
    CAST(coalesce(s.cities, 0) AS DOUBLE) AS cities,
    CAST(coalesce(s.city_centers, 0) AS DOUBLE) AS city_centers,
    CAST(coalesce(s.seats, 0) AS DOUBLE) AS seats,
    CAST(coalesce(s.notary, 0) AS DOUBLE) AS notary,
    CAST(coalesce(s.equipped, 0) AS DOUBLE) AS equipped,
    CAST(coalesce(t.townships, 0) AS DOUBLE) AS townships,
    CAST(coalesce(t.built, 0) AS DOUBLE) AS townships_built,
    CAST(coalesce(t.operating, 0) AS DOUBLE) AS townships_operating,
    CAST(coalesce(v.villages, 0) AS DOUBLE) AS villages,
    CAST(coalesce(v.built, 0) AS DOUBLE) AS villages_built,
    CAST(coalesce(v.adviser, 0) AS DOUBLE) AS villages_adviser
  FROM grid g
  JOIN snapshots_q sq ON sq.q = g.q
  LEFT JOIN seat_agg s ON s.q = g.q AND s.scope = g.scope AND s.code = g.code
  LEFT JOIN township_agg t ON t.q = g.q AND t.scope = g.scope AND t.code = g.code
  LEFT JOIN village_agg v ON v.q = g.q AND v.scope = g.scope AND v.code = g.code
)
-- One pass over w (a UNION ALL of one SELECT per indicator would compute w once per branch).
SELECT w.q, w.quarter, w.scope, w.code, i.indicator,
  CASE i.indicator
    WHEN 'coverage.county_center' THEN CASE WHEN has_platforms THEN ratio(county_centers, counties) END
    WHEN 'coverage.city_center' THEN CASE WHEN has_platforms THEN ratio(city_centers, cities) END
    WHEN 'coverage.township_build_rate' THEN CASE WHEN has_platforms THEN ratio(townships_built, townships) END
    WHEN 'coverage.township_operating_rate' THEN CASE WHEN has_platforms THEN ratio(townships_operating, townships) END
    WHEN 'coverage.village_build_rate' THEN CASE WHEN has_platforms THEN ratio(villages_built, villages) END
    WHEN 'coverage.village_adviser_rate' THEN CASE WHEN has_staff THEN ratio(villages_adviser, villages) END
    WHEN 'coverage.notary_settled' THEN CASE WHEN has_platforms THEN ratio(notary, seats) END
    WHEN 'coverage.equipment_complete' THEN CASE WHEN has_platforms THEN ratio(equipped, seats) END
  END AS value,
  CASE i.indicator
    WHEN 'coverage.county_center' THEN CASE WHEN has_platforms THEN county_centers END
    WHEN 'coverage.city_center' THEN CASE WHEN has_platforms THEN city_centers END
    WHEN 'coverage.township_build_rate' THEN CASE WHEN has_platforms THEN townships_built END
    WHEN 'coverage.township_operating_rate' THEN CASE WHEN has_platforms THEN townships_operating END
    WHEN 'coverage.village_build_rate' THEN CASE WHEN has_platforms THEN villages_built END
    WHEN 'coverage.village_adviser_rate' THEN CASE WHEN has_staff THEN villages_adviser END
    WHEN 'coverage.notary_settled' THEN CASE WHEN has_platforms THEN notary END
    WHEN 'coverage.equipment_complete' THEN CASE WHEN has_platforms THEN equipped END
  END AS numerator,
  CASE i.indicator
    WHEN 'coverage.county_center' THEN CASE WHEN has_platforms THEN counties END
    WHEN 'coverage.city_center' THEN CASE WHEN has_platforms THEN cities END
    WHEN 'coverage.township_build_rate' THEN CASE WHEN has_platforms THEN townships END
    WHEN 'coverage.township_operating_rate' THEN CASE WHEN has_platforms THEN townships END
    WHEN 'coverage.village_build_rate' THEN CASE WHEN has_platforms THEN villages END
    WHEN 'coverage.village_adviser_rate' THEN CASE WHEN has_staff THEN villages END
    WHEN 'coverage.notary_settled' THEN CASE WHEN has_platforms THEN seats END
    WHEN 'coverage.equipment_complete' THEN CASE WHEN has_platforms THEN seats END
  END AS denominator
FROM w CROSS JOIN (SELECT column1 AS indicator FROM (VALUES ('coverage.county_center'), ('coverage.city_center'), ('coverage.township_build_rate'), ('coverage.township_operating_rate'), ('coverage.village_build_rate'), ('coverage.village_adviser_rate'), ('coverage.notary_settled'), ('coverage.equipment_complete'))) i
WHERE i.indicator <> 'coverage.city_center' OR w.scope IN ('city', 'province')
