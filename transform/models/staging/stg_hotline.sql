/*
doc = "Each call at its current row: its quarter (of queued_at, local time), durations in exact seconds, and where it counts."
depends = ["hotline_calls_current", "cities", "counties"]

[columns]
call_id = "Call id (one row per call)"
q = "Quarter number of queued_at in local time (year × 4 + quarter − 1)"
seat_city = "The answering seat's city, when it is a city of the divisions (null for the backstop 410000)"
in_province = "Counts at province scope: answered by a city of the divisions or by the backstop 410000"
caller_county = "The caller's county, when it is a county of the divisions"
caller_city = "The city of the caller's county"
answered = "The call was answered"
total_s = "ended_at − queued_at, seconds"
wait_s = "answered_at − queued_at, seconds (answered calls)"
talk_s = "ended_at − answered_at, seconds (answered calls)"
rating = "The caller's rating 1-5, or null"

[[tests]]
unique = ["call_id"]
[[tests]]
not_null = ["call_id", "q", "total_s"]
*/
SELECT
  h.call_id,
  local_quarter(h.queued_at) AS q,
  c.code AS seat_city,
  (h.seat_city_code = '410000' OR c.code IS NOT NULL) AS in_province,
  k.code AS caller_county,
  k.city_code AS caller_city,
  h.answered_at IS NOT NULL AS answered,
  (CAST(h.ended_at AS BIGINT) - CAST(h.queued_at AS BIGINT)) / 1000000.0 AS total_s,
  (CAST(h.answered_at AS BIGINT) - CAST(h.queued_at AS BIGINT)) / 1000000.0 AS wait_s,
  (CAST(h.ended_at AS BIGINT) - CAST(h.answered_at AS BIGINT)) / 1000000.0 AS talk_s,
  h.rating
FROM hotline_calls_current h
LEFT JOIN cities c ON c.code = h.seat_city_code
LEFT JOIN counties k ON k.code = h.caller_county_code
