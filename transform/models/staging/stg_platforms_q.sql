/*
doc = "The platforms registry as of each quarter's last day E: the rows of the latest snapshot dated on or before E (none: the quarter has no row here, and coverage is null)."
depends = ["quarters", "platforms_current"]

[columns]
q = "Quarter number"
as_of = "The snapshot used"
platform_id = "Platform id"
level = "city, county, township or village"
division_code = "The platform's division"
built = "Built by E (built_on ≤ E)"
operating = "Operating"
notary = "Lists notarization among its services"
equipped = "Lists all of cctv, id_reader, doc_camera and rating_device"

[[tests]]
unique = ["q", "platform_id"]
*/
WITH snapshots AS (
  SELECT DISTINCT as_of FROM platforms_current
),
chosen AS (
  SELECT qs.q, qs.last_day, max(s.as_of) AS as_of
  FROM quarters qs JOIN snapshots s ON s.as_of <= qs.last_day
  GROUP BY qs.q, qs.last_day
)
SELECT c.q, c.as_of, p.platform_id, p.level, p.division_code,
  (p.built_on IS NOT NULL AND p.built_on <= c.last_day) AS built,
  p.operating,
  coalesce(array_has(p.services, 'notarization'), false) AS notary,
  coalesce(array_has_all(p.equipment, make_array('cctv', 'id_reader', 'doc_camera', 'rating_device')), false) AS equipped
FROM chosen c JOIN platforms_current p ON p.as_of = c.as_of
