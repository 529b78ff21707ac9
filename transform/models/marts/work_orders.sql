/*
doc = "Work-order indicators (F2), each order at its latest version: created, closed and backlog by quarter; on-time, median hours to close and satisfaction of the orders closed in the quarter."
depends = ["stg_work_orders", "grid", "quarters"]
indicators = [
  "workorders.created", "workorders.green_channel", "workorders.closed", "workorders.on_time_rate",
  "workorders.median_close_hours", "workorders.backlog", "workorders.satisfaction_rate",
]

[columns]
q = "Quarter number"
quarter = "Quarter label"
scope = "county, city or province"
code = "Scope code"
indicator = "Indicator id"
value = "The value"
numerator = "Counted"
denominator = "Divided by"

[[tests]]
unique = ["q", "scope", "code", "indicator"]
*/
WITH scoped AS (
  SELECT 'county' AS scope, county_code AS code, o.* FROM stg_work_orders o WHERE county_code IS NOT NULL
  UNION ALL
  SELECT 'city' AS scope, city_code AS code, o.* FROM stg_work_orders o WHERE city_code IS NOT NULL
  UNION ALL
  SELECT 'province' AS scope, '410000' AS code, o.* FROM stg_work_orders o WHERE in_province
),
created AS (
  SELECT created_q AS q, scope, code, count(*) AS created,
    sum(CASE WHEN green_channel THEN 1 ELSE 0 END) AS green
  FROM scoped GROUP BY created_q, scope, code
),
closed AS (
  SELECT closed_q AS q, scope, code, count(*) AS closed,
    sum(CASE WHEN on_time THEN 1 ELSE 0 END) AS on_time,
    median(close_hours) AS median_hours,
    sum(CASE WHEN rating IS NOT NULL THEN 1 ELSE 0 END) AS rated,
    sum(CASE WHEN rating >= 3 THEN 1 ELSE 0 END) AS satisfied
  FROM scoped WHERE status = 'closed' GROUP BY closed_q, scope, code
),
backlog AS (
  SELECT qs.q, s.scope, s.code, count(*) AS backlog
  FROM quarters qs JOIN scoped s
    ON s.created_q <= qs.q AND (s.closed_q IS NULL OR s.closed_q > qs.q)
  WHERE s.status <> 'cancelled'
  GROUP BY qs.q, s.scope, s.code
),
w AS (
  SELECT g.q, g.quarter, g.scope, g.code,
    CAST(coalesce(cr.created, 0) AS DOUBLE) AS created,
    CAST(coalesce(cr.green, 0) AS DOUBLE) AS green,
    CAST(coalesce(cl.closed, 0) AS DOUBLE) AS closed,
    CAST(coalesce(cl.on_time, 0) AS DOUBLE) AS on_time,
    cl.median_hours,
    CAST(coalesce(cl.rated, 0) AS DOUBLE) AS rated,
    CAST(coalesce(cl.satisfied, 0) AS DOUBLE) AS satisfied,
    CAST(coalesce(b.backlog, 0) AS DOUBLE) AS backlog
  FROM grid g
  LEFT JOIN created cr ON cr.q = g.q AND cr.scope = g.scope AND cr.code = g.code
  LEFT JOIN closed cl ON cl.q = g.q AND cl.scope = g.scope AND cl.code = g.code
  LEFT JOIN backlog b ON b.q = g.q AND b.scope = g.scope AND b.code = g.code
)
-- One pass over w (a UNION ALL of one SELECT per indicator would compute w once per branch).
SELECT w.q, w.quarter, w.scope, w.code, i.indicator,
  CASE i.indicator
    WHEN 'workorders.created' THEN created
    WHEN 'workorders.green_channel' THEN green
    WHEN 'workorders.closed' THEN closed
    WHEN 'workorders.on_time_rate' THEN ratio(on_time, closed)
    WHEN 'workorders.median_close_hours' THEN median_hours
    WHEN 'workorders.backlog' THEN backlog
    WHEN 'workorders.satisfaction_rate' THEN ratio(satisfied, rated)
  END AS value,
  CASE i.indicator
    WHEN 'workorders.on_time_rate' THEN on_time
    WHEN 'workorders.satisfaction_rate' THEN satisfied
  END AS numerator,
  CASE i.indicator
    WHEN 'workorders.on_time_rate' THEN closed
    WHEN 'workorders.median_close_hours' THEN closed
    WHEN 'workorders.satisfaction_rate' THEN rated
  END AS denominator
FROM w CROSS JOIN (SELECT column1 AS indicator FROM (VALUES ('workorders.created'), ('workorders.green_channel'), ('workorders.closed'), ('workorders.on_time_rate'), ('workorders.median_close_hours'), ('workorders.backlog'), ('workorders.satisfaction_rate'))) i
