/*
doc = "The indicators contract: one row per quarter × applicable scope and code × indicator, with the value, its numerator and denominator, and the target of the quarter's year (seeds/targets.csv: the row of that year, else the latest earlier one)."
depends = ["hotline", "work_orders", "cases", "coverage", "staffing", "funding", "balance", "quarters", "targets"]
output = true

[columns]
quarter = "Quarter label, e.g. 2025Q3"
scope = "county, city or province"
code = "Scope code"
indicator = "Indicator id"
value = "The value; null where the spec says"
numerator = "Counted or summed (rates, means, per-10k figures)"
denominator = "Divided by"
target = "Target of the quarter's year, if the indicator has one"
meets_target = "value ≥ target (or = target), unrounded; null without a value or a target"

[[tests]]
unique = ["quarter", "scope", "code", "indicator"]
[[tests]]
not_null = ["quarter", "scope", "code", "indicator"]
[[tests]]
relationship = { column = "code", to = "scopes.code" }
*/
WITH all_rows AS (
  SELECT * FROM hotline
  UNION ALL SELECT * FROM work_orders
  UNION ALL SELECT * FROM cases
  UNION ALL SELECT * FROM coverage
  UNION ALL SELECT * FROM staffing
  UNION ALL SELECT * FROM funding
  UNION ALL SELECT * FROM balance
),
target_q AS (
  SELECT qs.q, t.indicator, t.comparison, t.target,
    row_number() OVER (PARTITION BY qs.q, t.indicator ORDER BY t.from_year DESC) AS rn
  FROM quarters qs JOIN targets t ON t.from_year <= qs.q / 4
)
SELECT r.quarter, r.scope, r.code, r.indicator, r.value, r.numerator, r.denominator, t.target,
  CASE
    WHEN r.value IS NULL OR t.target IS NULL THEN CAST(NULL AS BOOLEAN)
    WHEN t.comparison = '>=' THEN r.value >= t.target
    ELSE r.value = t.target
  END AS meets_target
FROM all_rows r
LEFT JOIN target_q t ON t.q = r.q AND t.indicator = r.indicator AND t.rn = 1
