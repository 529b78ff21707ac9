//! Work-order versions (F2) as JSON lines, one file per month of `updated_at`, each in
//! ascending `(updated_at, order_id)`: the items the online platform's API serves. An order
//! has 2–4 versions (submitted → accepted → [transferred →] closed or cancelled).

use std::path::Path;

use serde_json::{json, Value};

use super::rng::{cumulative, Rng};
use super::world::{days, fmt_local, World};
use super::Written;

const CHANNELS: [(&str, f64); 4] = [
    ("onsite", 0.35),
    ("hotline", 0.15),
    ("online", 0.30),
    ("app", 0.20),
];
const SERVICES: [(&str, f64); 8] = [
    ("consultation", 0.45),
    ("mediation", 0.20),
    ("notarization", 0.08),
    ("legal_aid", 0.12),
    ("judicial_appraisal", 0.02),
    ("arbitration", 0.03),
    ("lawyer", 0.07),
    ("other", 0.03),
];

/// RFC 3339 of a local instant (seconds since the local epoch), as +08:00 or, for some, as Z.
fn rfc3339(local_secs: i64, zulu: bool) -> String {
    if zulu {
        format!("{}Z", fmt_local(local_secs - 8 * 3600).replace(' ', "T"))
    } else {
        format!("{}+08:00", fmt_local(local_secs).replace(' ', "T"))
    }
}

pub(super) fn write(world: &World, args: &super::Args, dir: &Path) -> anyhow::Result<Written> {
    let mut rng = Rng::derive(world.seed, "work_orders");
    let mut note_rng = Rng::derive(world.seed, "work_order_notes");
    let y = world.year;
    let start = days(y, 1, 1) as i64 * 86_400;
    let end = (days(y, 12, 31) as i64 + 1) * 86_400 - 1;
    let n = (300_000.0 * args.scale * world.counties.len() as f64 / 181.0) as usize;
    let channel_cum = cumulative(CHANNELS.iter().map(|c| c.1));
    let service_cum = cumulative(SERVICES.iter().map(|c| c.1));
    // Each version as its JSON line at once: kept as `serde_json::Value`s, the ten-province-year
    // scale (8.9 M versions) took more than 23 GiB.
    let mut versions: Vec<(i64, String, String)> = Vec::with_capacity(n * 3);
    for k in 0..n {
        let id = format!("WO{y}{:08}", k + 1);
        let created = rng.int(start, end - 3600);
        let county = world.county_by_pop(&mut rng);
        let c = &world.counties[county];
        let (level, mut code) = division(world, county, &mut rng);
        let channel = CHANNELS[rng.weighted(&channel_cum)].0;
        let service = SERVICES[rng.weighted(&service_cum)].0;
        let green = rng.chance(0.01);
        let due = created + 15 * 86_400;
        let zulu = rng.chance(0.1);
        let mut item = json!({
            "order_id": id,
            "created_at": rfc3339(created, zulu),
            "accepted_at": null,
            "closed_at": null,
            "due_at": rfc3339(due, zulu),
            "status": "submitted",
            "channel": channel,
            "platform_level": level,
            "division_code": code,
            "service_type": service,
            "green_channel": green,
            "rating": null,
        });
        let mut push = |t: i64, item: &mut Value| {
            item["updated_at"] = Value::String(rfc3339(t, zulu));
            if note_rng.chance(0.05) {
                item["handler_note"] = Value::String("新版本字段".into()); // newer servers add fields
            }
            versions.push((t, id.clone(), item.to_string()));
        };
        push(created, &mut item);
        let mut t = created;
        if rng.chance(0.05) {
            t += rng.exp(86_400.0) as i64 + 60;
            if t <= end {
                item["status"] = "cancelled".into();
                push(t, &mut item);
            }
            continue;
        }
        t += rng.exp(6.0 * 3600.0) as i64 + 60;
        if t > end {
            continue;
        }
        item["status"] = "accepted".into();
        item["accepted_at"] = rfc3339(t, zulu).into();
        push(t, &mut item);
        if rng.chance(0.08) {
            t += rng.exp(86_400.0) as i64 + 60;
            if t > end {
                continue;
            }
            let other = world.county_of_city(c.city, &mut rng);
            code = world.counties[other].code.clone();
            item["status"] = "transferred".into();
            item["platform_level"] = "county".into();
            item["division_code"] = code.clone().into();
            push(t, &mut item);
        }
        // Counties behind close later: more orders miss the 15-day due date.
        t += rng.exp(86_400.0 * (3.0 + 9.0 * (1.0 - c.quality))) as i64 + 600;
        if t > end || rng.chance(0.05) {
            continue;
        }
        item["status"] = "closed".into();
        item["closed_at"] = rfc3339(t, zulu).into();
        if rng.chance(0.6) {
            let x = rng.f64();
            item["rating"] = json!(if x < 0.72 {
                5
            } else if x < 0.9 {
                4
            } else if x < 0.96 {
                3
            } else if x < 0.99 {
                2
            } else {
                1
            });
        }
        push(t, &mut item);
    }
    let bad: [Value; 5] = [
        json!({"order_id": null, "updated_at": rfc3339(start + 3600, false), "created_at": rfc3339(start, false), "due_at": rfc3339(start, false), "status": "submitted", "channel": "online", "platform_level": "county", "division_code": world.counties[0].code, "service_type": "other", "green_channel": false}),
        json!({"order_id": format!("WO{y}BAD2"), "updated_at": rfc3339(start + 3600, false), "created_at": rfc3339(start, false), "due_at": rfc3339(start, false), "status": "closed", "closed_at": null, "channel": "online", "platform_level": "county", "division_code": world.counties[0].code, "service_type": "other", "green_channel": false}),
        json!({"order_id": format!("WO{y}BAD3"), "updated_at": rfc3339(start + 3600, false), "created_at": rfc3339(start, false), "due_at": rfc3339(start, false), "status": "submitted", "channel": "fax", "platform_level": "county", "division_code": world.counties[0].code, "service_type": "other", "green_channel": false}),
        json!({"order_id": format!("WO{y}BAD4"), "updated_at": rfc3339(start + 3600, false), "created_at": rfc3339(start, false), "due_at": rfc3339(start, false), "status": "submitted", "channel": "online", "platform_level": "county", "division_code": "510104", "service_type": "other", "green_channel": false}),
        json!({"order_id": format!("WO{y}BAD5"), "updated_at": rfc3339(start + 3600, false), "created_at": rfc3339(start, false), "due_at": rfc3339(start, false), "closed_at": rfc3339(start + 3600, false), "status": "closed", "channel": "online", "platform_level": "county", "division_code": world.counties[0].code, "service_type": "other", "green_channel": false, "rating": 4.5}),
    ];
    let n_bad = bad.len();
    for b in bad {
        let id = b["order_id"].as_str().unwrap_or_default().to_string();
        versions.push((start + 3600, id, b.to_string()));
    }
    versions.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let mut w = Written {
        feed: "work_orders",
        ..Default::default()
    };
    let mut by_month = (1..=12)
        .map(|m| {
            let f = std::fs::File::create(dir.join(format!("versions-{y}-{m:02}.jsonl")))?;
            Ok(std::io::BufWriter::new(f))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (t, _, line) in &versions {
        let month = super::world::date_of((t / 86_400) as i32);
        use chrono::Datelike;
        let out = &mut by_month[month.month0() as usize];
        std::io::Write::write_all(out, line.as_bytes())?;
        std::io::Write::write_all(out, b"\n")?;
    }
    w.bad_rows = n_bad;
    for out in by_month {
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        w.files += 1;
    }
    w.rows = versions.len();
    Ok(w)
}

/// Where an order is handled: 5% province, 10% city, else county, township or village.
fn division(world: &World, county: usize, rng: &mut Rng) -> (&'static str, String) {
    let c = &world.counties[county];
    let x = rng.f64();
    if x < 0.05 {
        ("province", plsw_store::PROVINCE_CODE.to_string())
    } else if x < 0.15 {
        ("city", world.cities[c.city].code.clone())
    } else if x < 0.45 || c.townships.is_empty() {
        ("county", c.code.clone())
    } else {
        let t = &world.townships[*rng.pick(&c.townships)];
        if x < 0.70 || t.villages.is_empty() {
            ("township", t.code.clone())
        } else {
            (
                "village",
                world.villages[*rng.pick(&t.villages)].code.clone(),
            )
        }
    }
}
