/*
doc = "Each case at its current row (case_type, case_id), with its quarters and where it counts: a county of the divisions, or a city for city-level organisations."
depends = ["cases_current", "counties", "cities"]

[columns]
case_id = "Case number"
case_type = "mediation, notarization, legal_aid or judicial_appraisal"
outcome = "Mediation outcome (success, failed) or null"
migrant_worker = "A migrant worker's case"
amount = "Amount recovered, yuan (empty = 0)"
accepted_q = "Quarter number of accepted_on"
closed_q = "Quarter number of closed_on, null while open"
county_code = "The county it counts in, when one of the divisions"
city_code = "The city it counts in: its county's, or the city of a city-level organisation"
in_province = "Counts at province scope"

[[tests]]
unique = ["case_type", "case_id"]
[[tests]]
not_null = ["case_id", "case_type", "accepted_q"]
[[tests]]
accepted_values = { column = "case_type", values = ["mediation", "notarization", "legal_aid", "judicial_appraisal"] }
*/
SELECT
  c.case_id,
  c.case_type,
  c.outcome,
  c.migrant_worker,
  coalesce(c.amount_recovered_yuan, CAST(0 AS DECIMAL(18, 2))) AS amount,
  date_quarter(c.accepted_on) AS accepted_q,
  date_quarter(c.closed_on) AS closed_q,
  k.code AS county_code,
  coalesce(k.city_code, ci.code) AS city_code,
  (k.code IS NOT NULL OR ci.code IS NOT NULL) AS in_province
FROM cases_current c
LEFT JOIN counties k ON k.code = c.county_code
LEFT JOIN cities ci ON ci.code = c.county_code
