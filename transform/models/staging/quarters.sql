/*
doc = "Every quarter from the earliest to the latest holding an event date of any feed (a call's queued_at, an order's created_at or closed_at, a case's accepted_on or closed_on, a funding row's year and quarter), gaps included. Snapshot dates add none."
depends = ["stg_hotline", "stg_work_orders", "stg_cases", "funding_current"]

[columns]
q = "Quarter number: year × 4 + quarter − 1"
quarter = "Label, e.g. 2025Q3"
last_day = "The quarter's last day E (registries are taken as of E)"

[[tests]]
unique = ["q"]
[[tests]]
not_null = ["q", "quarter", "last_day"]
*/
WITH events AS (
  SELECT q FROM stg_hotline
  UNION ALL SELECT created_q FROM stg_work_orders
  UNION ALL SELECT closed_q FROM stg_work_orders WHERE closed_q IS NOT NULL
  UNION ALL SELECT accepted_q FROM stg_cases
  UNION ALL SELECT closed_q FROM stg_cases WHERE closed_q IS NOT NULL
  UNION ALL SELECT year * 4 + quarter - 1 FROM funding_current
),
bounds AS (
  SELECT min(q) AS lo, max(q) AS hi FROM events
),
numbers AS (
  SELECT unnest(range(lo, hi + 1)) AS q FROM bounds WHERE lo IS NOT NULL
)
SELECT q, quarter_label(q) AS quarter, quarter_last_day(q) AS last_day FROM numbers
