/*
doc = "The staff registry as of each quarter's last day E: the rows of the latest snapshot dated on or before E that are active on E (active_from ≤ E, active_to empty or ≥ E), with where each counts."
depends = ["quarters", "staff_current", "counties", "cities"]

[columns]
q = "Quarter number"
staff_id = "Person id (one person may have several rows)"
role = "Role in this place"
full_time = "Full time"
division_code = "Where the person serves"
county_code = "The county the row counts in (its first 6 digits), when one of the divisions"
city_code = "The city it counts in: its county's, or a city code for city-level staff"

[[tests]]
not_null = ["q", "staff_id", "role"]
*/
WITH snapshots AS (
  SELECT DISTINCT as_of FROM staff_current
),
chosen AS (
  SELECT qs.q, qs.last_day, max(s.as_of) AS as_of
  FROM quarters qs JOIN snapshots s ON s.as_of <= qs.last_day
  GROUP BY qs.q, qs.last_day
)
SELECT c.q, s.staff_id, s.role, s.full_time, s.division_code,
  k.code AS county_code,
  coalesce(k.city_code, ci.code) AS city_code
FROM chosen c
JOIN staff_current s ON s.as_of = c.as_of
LEFT JOIN counties k ON k.code = substr(s.division_code, 1, 6)
LEFT JOIN cities ci ON ci.code = s.division_code
WHERE s.active_from <= c.last_day AND (s.active_to IS NULL OR s.active_to >= c.last_day)
  AND (k.code IS NOT NULL OR ci.code IS NOT NULL)
