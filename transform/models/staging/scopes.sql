/*
doc = "Every scope of the loaded divisions: each county, each city, and the province (410000)."
depends = ["counties", "cities"]

[columns]
scope = "county, city or province"
code = "The county's or the city's code, or 410000"
city_code = "The city of a county; a city's own code; null for the province"
county_kind = "A county's kind: district, county, county_city or functional_zone (null for cities and the province)"

[[tests]]
unique = ["scope", "code"]
[[tests]]
not_null = ["scope", "code"]
[[tests]]
accepted_values = { column = "scope", values = ["county", "city", "province"] }
*/
SELECT 'county' AS scope, code, city_code, kind AS county_kind FROM counties
UNION ALL
SELECT 'city' AS scope, code, code AS city_code, CAST(NULL AS VARCHAR) AS county_kind FROM cities
UNION ALL
SELECT 'province' AS scope, '410000' AS code, CAST(NULL AS VARCHAR) AS city_code, CAST(NULL AS VARCHAR) AS county_kind
