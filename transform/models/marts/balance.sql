/*
doc = "Balance across the counties of a city and of the province: the coefficient of variation (population standard deviation / mean) of lawyers and of cases per 10k residents over the counties with a value, and lawyers per 10k pooled over districts against those pooled over counties and county-level cities (functional zones in neither). A pool is null when any county in it lacks a population, or when it holds no county."
depends = ["grid", "staffing", "cases"]
indicators = [
  "balance.lawyers_per_10k_cv", "balance.cases_per_10k_cv", "balance.urban_rural_lawyer_ratio",
]

[columns]
q = "Quarter number"
quarter = "Quarter label"
scope = "city or province"
code = "Scope code"
indicator = "Indicator id"
value = "The value"
numerator = "Standard deviation (cv), or the urban pool (ratio)"
denominator = "Mean (cv), or the rural pool (ratio)"

[[tests]]
unique = ["q", "scope", "code", "indicator"]
*/
WITH county_values AS (
  SELECT g.q, g.code AS county_code, g.city_code, g.county_kind,
    s.value AS lawyers_10k, s.numerator AS lawyers, s.denominator AS population,
    c.value AS cases_10k
  FROM grid g
  JOIN staffing s ON s.q = g.q AND s.scope = 'county' AND s.code = g.code AND s.indicator = 'staff.lawyers_per_10k'
  JOIN cases c ON c.q = g.q AND c.scope = 'county' AND c.code = g.code AND c.indicator = 'cases.per_10k'
  WHERE g.scope = 'county'
),
scoped AS (
  SELECT 'city' AS scope, city_code AS code, v.* FROM county_values v
  UNION ALL
  SELECT 'province' AS scope, '410000' AS code, v.* FROM county_values v
),
agg AS (
  SELECT q, scope, code,
    stddev_pop(lawyers_10k) AS lawyers_sd, avg(lawyers_10k) AS lawyers_mean,
    stddev_pop(cases_10k) AS cases_sd, avg(cases_10k) AS cases_mean,
    sum(CASE WHEN county_kind = 'district' THEN 1 ELSE 0 END) AS urban_n,
    sum(CASE WHEN county_kind = 'district' AND population IS NOT NULL AND lawyers IS NOT NULL THEN 1 ELSE 0 END) AS urban_known,
    sum(CASE WHEN county_kind = 'district' THEN lawyers END) AS urban_lawyers,
    sum(CASE WHEN county_kind = 'district' THEN population END) AS urban_population,
    sum(CASE WHEN county_kind IN ('county', 'county_city') THEN 1 ELSE 0 END) AS rural_n,
    sum(CASE WHEN county_kind IN ('county', 'county_city') AND population IS NOT NULL AND lawyers IS NOT NULL THEN 1 ELSE 0 END) AS rural_known,
    sum(CASE WHEN county_kind IN ('county', 'county_city') THEN lawyers END) AS rural_lawyers,
    sum(CASE WHEN county_kind IN ('county', 'county_city') THEN population END) AS rural_population
  FROM scoped GROUP BY q, scope, code
),
w AS (
  SELECT g.q, g.quarter, g.scope, g.code,
    a.lawyers_sd, a.lawyers_mean, a.cases_sd, a.cases_mean,
    CASE WHEN a.urban_n > 0 AND a.urban_known = a.urban_n
      THEN ratio(a.urban_lawyers, a.urban_population) * 10000.0 END AS urban,
    CASE WHEN a.rural_n > 0 AND a.rural_known = a.rural_n
      THEN ratio(a.rural_lawyers, a.rural_population) * 10000.0 END AS rural
  FROM grid g LEFT JOIN agg a ON a.q = g.q AND a.scope = g.scope AND a.code = g.code
  WHERE g.scope IN ('city', 'province')
)
-- One pass over w (a UNION ALL of one SELECT per indicator would compute w once per branch).
SELECT w.q, w.quarter, w.scope, w.code, i.indicator,
  CASE i.indicator
    WHEN 'balance.lawyers_per_10k_cv' THEN ratio(lawyers_sd, lawyers_mean)
    WHEN 'balance.cases_per_10k_cv' THEN ratio(cases_sd, cases_mean)
    WHEN 'balance.urban_rural_lawyer_ratio' THEN ratio(urban, rural)
  END AS value,
  CASE i.indicator
    WHEN 'balance.lawyers_per_10k_cv' THEN lawyers_sd
    WHEN 'balance.cases_per_10k_cv' THEN cases_sd
    WHEN 'balance.urban_rural_lawyer_ratio' THEN urban
  END AS numerator,
  CASE i.indicator
    WHEN 'balance.lawyers_per_10k_cv' THEN lawyers_mean
    WHEN 'balance.cases_per_10k_cv' THEN cases_mean
    WHEN 'balance.urban_rural_lawyer_ratio' THEN rural
  END AS denominator
FROM w CROSS JOIN (SELECT column1 AS indicator FROM (VALUES ('balance.lawyers_per_10k_cv'), ('balance.cases_per_10k_cv'), ('balance.urban_rural_lawyer_ratio'))) i
