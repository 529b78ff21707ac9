/*
doc = "Which quarters have a platforms and a staff snapshot dated on or before their last day E: without one, the indicators that need it are null."
depends = ["quarters", "platforms_current", "staff_current"]

[columns]
q = "Quarter number"
has_platforms = "A platforms snapshot dated ≤ E exists"
has_staff = "A staff snapshot dated ≤ E exists"

[[tests]]
unique = ["q"]
[[tests]]
not_null = ["has_platforms", "has_staff"]
*/
WITH p AS (SELECT min(as_of) AS first_day FROM platforms_current),
s AS (SELECT min(as_of) AS first_day FROM staff_current)
SELECT qs.q,
  coalesce(p.first_day <= qs.last_day, false) AS has_platforms,
  coalesce(s.first_day <= qs.last_day, false) AS has_staff
FROM quarters qs CROSS JOIN p CROSS JOIN s
