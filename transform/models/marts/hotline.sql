/*
doc = "Hotline indicators (F1), by the quarter of queued_at: at city scope by the answering seat, at province scope every seat of the divisions and the backstop; calls per 10k residents by the caller's county at every scope."
depends = ["stg_hotline", "grid", "population_q"]
indicators = [
  "hotline.inbound", "hotline.answered", "hotline.short_abandoned", "hotline.answer_rate",
  "hotline.evaluation_rate", "hotline.satisfaction_rate", "hotline.service_level_20s",
  "hotline.avg_wait_s", "hotline.avg_talk_s", "hotline.calls_per_10k",
]

[columns]
q = "Quarter number"
quarter = "Quarter label"
scope = "city or province (county: calls_per_10k only)"
code = "Scope code"
indicator = "Indicator id"
value = "The value"
numerator = "Counted or summed"
denominator = "Divided by"

[[tests]]
unique = ["q", "scope", "code", "indicator"]
[[tests]]
relationship = { column = "code", to = "scopes.code" }
*/
WITH scoped AS (
  SELECT 'city' AS scope, seat_city AS code, h.* FROM stg_hotline h WHERE seat_city IS NOT NULL
  UNION ALL
  SELECT 'province' AS scope, '410000' AS code, h.* FROM stg_hotline h WHERE in_province
),
agg AS (
  SELECT q, scope, code,
    count(*) AS inbound,
    sum(CASE WHEN answered THEN 1 ELSE 0 END) AS answered,
    sum(CASE WHEN NOT answered AND total_s < 10 THEN 1 ELSE 0 END) AS short_abandoned,
    sum(CASE WHEN answered AND rating IS NOT NULL THEN 1 ELSE 0 END) AS rated,
    sum(CASE WHEN answered AND rating >= 3 THEN 1 ELSE 0 END) AS satisfied,
    sum(CASE WHEN answered AND wait_s <= 20 THEN 1 ELSE 0 END) AS within_20s,
    sum(CASE WHEN answered THEN wait_s ELSE 0 END) AS wait_sum,
    sum(CASE WHEN answered THEN talk_s ELSE 0 END) AS talk_sum
  FROM scoped GROUP BY q, scope, code
),
w AS (
  SELECT g.q, g.quarter, g.scope, g.code,
    CAST(coalesce(a.inbound, 0) AS DOUBLE) AS inbound,
    CAST(coalesce(a.answered, 0) AS DOUBLE) AS answered,
    CAST(coalesce(a.short_abandoned, 0) AS DOUBLE) AS short_abandoned,
    CAST(coalesce(a.rated, 0) AS DOUBLE) AS rated,
    CAST(coalesce(a.satisfied, 0) AS DOUBLE) AS satisfied,
    CAST(coalesce(a.within_20s, 0) AS DOUBLE) AS within_20s,
    coalesce(a.wait_sum, 0.0) AS wait_sum,
    coalesce(a.talk_sum, 0.0) AS talk_sum
  FROM grid g LEFT JOIN agg a ON a.q = g.q AND a.scope = g.scope AND a.code = g.code
  WHERE g.scope IN ('city', 'province')
),
callers AS (
  SELECT q, 'county' AS scope, caller_county AS code FROM stg_hotline WHERE caller_county IS NOT NULL
  UNION ALL
  SELECT q, 'city' AS scope, caller_city AS code FROM stg_hotline WHERE caller_county IS NOT NULL
  UNION ALL
  SELECT q, 'province' AS scope, '410000' AS code FROM stg_hotline WHERE caller_county IS NOT NULL
),
by_caller AS (
  SELECT q, scope, code, count(*) AS calls FROM callers GROUP BY q, scope, code
)
-- One pass over w (a UNION ALL of one SELECT per indicator would compute w once per branch).
SELECT w.q, w.quarter, w.scope, w.code, i.indicator,
  CASE i.indicator
    WHEN 'hotline.inbound' THEN inbound
    WHEN 'hotline.answered' THEN answered
    WHEN 'hotline.short_abandoned' THEN short_abandoned
    WHEN 'hotline.answer_rate' THEN ratio(answered, inbound - short_abandoned)
    WHEN 'hotline.evaluation_rate' THEN ratio(rated, answered)
    WHEN 'hotline.satisfaction_rate' THEN ratio(satisfied, rated)
    WHEN 'hotline.service_level_20s' THEN ratio(within_20s, answered)
    WHEN 'hotline.avg_wait_s' THEN ratio(wait_sum, answered)
    WHEN 'hotline.avg_talk_s' THEN ratio(talk_sum, answered)
  END AS value,
  CASE i.indicator
    WHEN 'hotline.answer_rate' THEN answered
    WHEN 'hotline.evaluation_rate' THEN rated
    WHEN 'hotline.satisfaction_rate' THEN satisfied
    WHEN 'hotline.service_level_20s' THEN within_20s
    WHEN 'hotline.avg_wait_s' THEN wait_sum
    WHEN 'hotline.avg_talk_s' THEN talk_sum
  END AS numerator,
  CASE i.indicator
    WHEN 'hotline.answer_rate' THEN inbound - short_abandoned
    WHEN 'hotline.evaluation_rate' THEN answered
    WHEN 'hotline.satisfaction_rate' THEN rated
    WHEN 'hotline.service_level_20s' THEN answered
    WHEN 'hotline.avg_wait_s' THEN answered
    WHEN 'hotline.avg_talk_s' THEN answered
  END AS denominator
FROM w CROSS JOIN (SELECT column1 AS indicator FROM (VALUES ('hotline.inbound'), ('hotline.answered'), ('hotline.short_abandoned'), ('hotline.answer_rate'), ('hotline.evaluation_rate'), ('hotline.satisfaction_rate'), ('hotline.service_level_20s'), ('hotline.avg_wait_s'), ('hotline.avg_talk_s'))) i
UNION ALL
SELECT g.q, g.quarter, g.scope, g.code, 'hotline.calls_per_10k',
  ratio(CAST(coalesce(c.calls, 0) AS DOUBLE), p.population) * 10000.0,
  CAST(coalesce(c.calls, 0) AS DOUBLE), p.population
FROM grid g
LEFT JOIN by_caller c ON c.q = g.q AND c.scope = g.scope AND c.code = g.code
LEFT JOIN population_q p ON p.q = g.q AND p.scope = g.scope AND p.code = g.code
