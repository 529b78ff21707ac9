//! The rules of F2, the online platform's work-order versions: one JSON item of the API becomes
//! a row of `work_order_versions`, or a quarantine reason. The pull itself ([B]) pages through the
//! API and commits; this module is the item-level contract it applies.

use plsw_schemas::codes;
use plsw_schemas::tables::WORK_ORDER_VERSIONS;
use plsw_store::{Divisions, PROVINCE_CODE};
use serde_json::Value as Json;

use crate::feeds::{Reject, Row, Value};

fn reject(reason: &str, message: String) -> Reject {
    Reject {
        reason: reason.to_string(),
        message,
    }
}

/// An RFC 3339 instant as UTC microseconds (`+08:00` and `Z` forms of one moment are equal).
pub fn rfc3339_micros(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.timestamp_micros())
}

/// Converts one API item into a row of `work_order_versions` (columns in table order).
pub fn convert_item(item: &Json, divisions: &Divisions) -> Result<Row<'static>, Reject> {
    let Json::Object(obj) = item else {
        return Err(reject(
            "not_an_object",
            "the item is not a JSON object".into(),
        ));
    };
    // A missing key is the same as null.
    let get = |k: &str| obj.get(k).unwrap_or(&Json::Null);
    let mut values = Vec::with_capacity(WORK_ORDER_VERSIONS.columns.len());
    for col in WORK_ORDER_VERSIONS.columns {
        let v = get(col.name);
        let value = match (col.name, v) {
            ("green_channel", Json::Null) => Value::Bool(false),
            ("green_channel", Json::Bool(b)) => Value::Bool(*b),
            ("green_channel", other) => {
                return Err(reject(
                    "bad_boolean",
                    format!("green_channel: {other} is not a boolean"),
                ))
            }
            (name, Json::Null) if col.required => {
                return Err(reject(
                    "missing_required",
                    format!("{name} is required but null or missing"),
                ))
            }
            (_, Json::Null) => Value::Null,
            ("rating", Json::Number(n)) => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() != 0.0 {
                    return Err(reject(
                        "bad_number",
                        format!("rating: {n} is not an integer"),
                    ));
                }
                let r = f as i64;
                if !(1..=5).contains(&r) {
                    return Err(reject(
                        "rating_out_of_range",
                        format!("rating {r} is not 1-5"),
                    ));
                }
                Value::Int(r)
            }
            (name, Json::String(s)) => match col.kind {
                plsw_schemas::Kind::Timestamp => Value::Ts(rfc3339_micros(s).ok_or_else(|| {
                    reject(
                        "bad_timestamp",
                        format!("{name}: {s:?} is not an RFC 3339 instant"),
                    )
                })?),
                plsw_schemas::Kind::Code(list) => Value::Text(
                    list.parse(s)
                        .ok_or_else(|| {
                            reject(
                                &format!("unknown_{name}"),
                                format!("{name}: {s:?} is not a code of {}", list.name),
                            )
                        })?
                        .into(),
                ),
                _ if s.trim().is_empty() && col.required => {
                    return Err(reject(
                        "missing_required",
                        format!("{name} is required but empty"),
                    ))
                }
                _ => Value::Text(s.trim().to_string().into()),
            },
            (name, other) => {
                return Err(reject(
                    "bad_type",
                    format!("{name}: {other} is not of the expected type"),
                ))
            }
        };
        values.push(value);
    }
    let row = Row::new(&WORK_ORDER_VERSIONS, values);
    check(&row, divisions)?;
    Ok(row)
}

fn check(row: &Row, d: &Divisions) -> Result<(), Reject> {
    let text = |c: &str| match row.get(c) {
        Value::Text(s) => s.as_ref(),
        _ => "",
    };
    let status = text("status");
    let closed = !matches!(row.get("closed_at"), Value::Null);
    if (status == "closed") != closed {
        return Err(reject(
            "closed_mismatch",
            format!(
                "status {status} with closed_at {}",
                if closed { "set" } else { "null" }
            ),
        ));
    }
    let code = text("division_code");
    let level = text("platform_level");
    let fits = match level {
        "province" => code == PROVINCE_CODE,
        "city" => d.is_city(code),
        "county" => d.is_county(code),
        "township" => d.is_township(code),
        _ => d.is_village(code),
    };
    if !fits {
        let known = code == PROVINCE_CODE || d.is_division(code);
        return Err(reject(
            if known {
                "level_mismatch"
            } else {
                "unknown_division"
            },
            format!("division_code {code:?} is not a {level} of the province"),
        ));
    }
    debug_assert!(codes::PLATFORM_LEVELS.contains(level));
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn item() -> Json {
        json!({
            "order_id": "WO1", "updated_at": "2025-03-01T10:00:00+08:00",
            "created_at": "2025-03-01T09:00:00+08:00", "accepted_at": null, "closed_at": null,
            "due_at": "2025-03-16T09:00:00+08:00", "status": "submitted", "channel": "online",
            "platform_level": "county", "division_code": "410122", "service_type": "consultation",
            "green_channel": false, "rating": null, "new_field": {"ignored": true}
        })
    }

    fn reason(changes: &[(&str, Json)]) -> String {
        let mut it = item();
        for (k, v) in changes {
            if v == &json!("<absent>") {
                it.as_object_mut().unwrap().remove(*k);
            } else {
                it[*k] = v.clone();
            }
        }
        match convert_item(&it, &Divisions::builtin()) {
            Ok(_) => "accepted".into(),
            Err(r) => r.reason,
        }
    }

    #[test]
    fn work_order_rules() {
        let cases: Vec<(Vec<(&str, Json)>, &str)> = vec![
            (vec![], "accepted"),
            (vec![("order_id", json!(null))], "missing_required"),
            (vec![("order_id", json!("<absent>"))], "missing_required"),
            (
                vec![("updated_at", json!("2025-03-01 10:00:00"))],
                "bad_timestamp",
            ),
            (vec![("due_at", json!(null))], "missing_required"),
            (vec![("status", json!("lost"))], "unknown_status"),
            (vec![("status", json!("closed"))], "closed_mismatch"),
            (
                vec![("closed_at", json!("2025-03-02T09:00:00Z"))],
                "closed_mismatch",
            ),
            (
                vec![
                    ("status", json!("closed")),
                    ("closed_at", json!("2025-03-02T09:00:00Z")),
                ],
                "accepted",
            ),
            (vec![("channel", json!("fax"))], "unknown_channel"),
            (vec![("division_code", json!("510104"))], "unknown_division"),
            (vec![("division_code", json!("410100"))], "level_mismatch"),
            (
                vec![
                    ("platform_level", json!("province")),
                    ("division_code", json!("410000")),
                ],
                "accepted",
            ),
            (
                vec![
                    ("platform_level", json!("village")),
                    ("division_code", json!("410122101205")),
                ],
                "accepted",
            ),
            (vec![("rating", json!(4.5))], "bad_number"),
            (vec![("rating", json!(6))], "rating_out_of_range"),
            (vec![("rating", json!(4.0))], "accepted"),
            (vec![("green_channel", json!(null))], "accepted"),
            (vec![("green_channel", json!("yes"))], "bad_boolean"),
            (vec![("created_at", json!(12))], "bad_type"),
        ];
        for (changes, want) in cases {
            assert_eq!(reason(&changes), want, "{changes:?}");
        }
        assert_eq!(
            convert_item(&json!([1]), &Divisions::builtin())
                .unwrap_err()
                .reason,
            "not_an_object"
        );
    }

    #[test]
    fn the_same_instant_in_two_forms_is_one_version() {
        assert_eq!(
            rfc3339_micros("2025-03-01T10:00:00+08:00"),
            rfc3339_micros("2025-03-01T02:00:00Z")
        );
        let row = convert_item(&item(), &Divisions::builtin()).unwrap();
        assert_eq!(row.get("green_channel"), &Value::Bool(false));
        assert_eq!(row.get("updated_at"), &Value::Ts(1_740_794_400_000_000));
    }
}
