/*
doc = "Population per quarter and scope: a county's row for the quarter's year, else its latest earlier year, else null; a city's or the province's is the sum over its counties, null when any of them has none."
depends = ["grid", "population_current"]

[columns]
q = "Quarter number"
scope = "county, city or province"
code = "Scope code"
population = "Persons, or null"

[[tests]]
unique = ["q", "scope", "code"]
*/
WITH counties_q AS (
  SELECT q, code, city_code FROM grid WHERE scope = 'county'
),
best_year AS (
  SELECT g.q, g.code, max(p.year) AS year
  FROM counties_q g JOIN population_current p ON p.county_code = g.code AND p.year <= g.q / 4
  GROUP BY g.q, g.code
),
county AS (
  SELECT g.q, g.code, g.city_code, p.population
  FROM counties_q g
  LEFT JOIN best_year y ON y.q = g.q AND y.code = g.code
  LEFT JOIN population_current p ON p.county_code = y.code AND p.year = y.year
)
SELECT q, 'county' AS scope, code, CAST(population AS DOUBLE) AS population FROM county
UNION ALL
SELECT q, 'city' AS scope, city_code AS code,
  CASE WHEN count(population) = count(*) THEN CAST(sum(population) AS DOUBLE) END AS population
FROM county GROUP BY q, city_code
UNION ALL
SELECT q, 'province' AS scope, '410000' AS code,
  CASE WHEN count(population) = count(*) THEN CAST(sum(population) AS DOUBLE) END AS population
FROM county GROUP BY q
