/*
doc = "Each work order at its latest version (greatest updated_at), with its quarters and where it counts: its county (first 6 digits of a county, township or village division), its city (the county's, or the city of a city-level order), the province."
depends = ["work_order_versions_current", "counties", "cities"]

[columns]
order_id = "Work-order id (one row per order)"
status = "Status at the latest version"
green_channel = "Migrant-worker wage-arrears green channel"
rating = "Applicant's rating 1-5, or null"
created_q = "Quarter number of created_at (local time)"
closed_q = "Quarter number of closed_at (local time), null while open"
on_time = "Closed with closed_at ≤ due_at"
close_hours = "closed_at − created_at in hours (closed orders)"
county_code = "The county it counts in, when one of the divisions"
city_code = "The city it counts in: its county's, or the city of a city-level order"
in_province = "Counts at province scope: a province-level order, or one of a county or city of the divisions"

[[tests]]
unique = ["order_id"]
[[tests]]
not_null = ["order_id", "status", "created_q"]
[[tests]]
relationship = { column = "county_code", to = "counties.code" }
*/
-- The latest version of each order: its greatest updated_at, found by grouping and joined back
-- ((order_id, updated_at) is the view's key, so one row per order); cheaper than ranking every
-- version with a window, which sorts them all.
WITH newest AS (
  SELECT order_id, max(updated_at) AS updated_at
  FROM work_order_versions_current
  GROUP BY order_id
),
latest AS (
  SELECT v.*
  FROM work_order_versions_current v
  JOIN newest n ON n.order_id = v.order_id AND n.updated_at = v.updated_at
)
SELECT
  l.order_id,
  l.status,
  l.green_channel,
  l.rating,
  local_quarter(l.created_at) AS created_q,
  local_quarter(l.closed_at) AS closed_q,
  (l.closed_at IS NOT NULL AND l.closed_at <= l.due_at) AS on_time,
  (CAST(l.closed_at AS BIGINT) - CAST(l.created_at AS BIGINT)) / 3600000000.0 AS close_hours,
  k.code AS county_code,
  coalesce(k.city_code, c.code) AS city_code,
  (l.division_code = '410000' OR k.code IS NOT NULL OR c.code IS NOT NULL) AS in_province
FROM latest l
LEFT JOIN counties k
  ON l.platform_level IN ('county', 'township', 'village') AND k.code = substr(l.division_code, 1, 6)
LEFT JOIN cities c
  ON l.platform_level = 'city' AND c.code = l.division_code
