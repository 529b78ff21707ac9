//! Daily 12348 call exports (F1): odd months in GB18030 with Chinese headers and shuffled
//! columns (the hotline system's default export), even months in UTF-8 with English headers,
//! the first of each even month with a BOM. About 1% of a day's calls are re-exported the next
//! day with a corrected field; every tenth day carries one bad row of a rotating kind.

use std::path::Path;

use plsw_schemas::tables::HOTLINE_CALLS;

use super::rng::{cumulative, Rng};
use super::world::{date_of, days, fmt_local, World};
use super::{headers, write_text, Args, CsvDoc, TextEncoding, Written};

const TOPICS: [(&str, &str, f64); 9] = [
    ("labor", "劳动争议", 0.26),
    ("marriage_family", "婚姻家庭", 0.20),
    ("land", "土地纠纷", 0.08),
    ("contract", "合同纠纷", 0.12),
    ("debt", "债权债务", 0.14),
    ("traffic", "交通事故", 0.07),
    ("criminal", "刑事", 0.04),
    ("administrative", "行政", 0.03),
    ("other", "其他", 0.06),
];

const NEW_TOPIC: usize = usize::MAX;
const EMPTY_TOPIC: usize = usize::MAX - 1;

/// Kinds of bad rows, in rotation.
const BAD_KINDS: [&str; 8] = [
    "missing_call_id",
    "bad_timestamp",
    "ended_before_queued",
    "answered_out_of_range",
    "rating_out_of_range",
    "rating_unanswered",
    "unknown_seat_city",
    "unknown_line",
];

#[derive(Debug, Clone)]
struct Call {
    id: String,
    line: &'static str,
    seat: String,
    caller: String,
    queued: i64,
    answered: Option<i64>,
    ended: i64,
    topic: usize,
    rating: Option<i64>,
}

impl Call {
    fn fields(&self, chinese: bool) -> [String; 9] {
        let topic = if self.topic == EMPTY_TOPIC {
            String::new()
        } else if self.topic == NEW_TOPIC {
            "赡养纠纷".to_string() // a category new upstream: kept as `other`, with a warning
        } else if chinese {
            TOPICS[self.topic].1.to_string()
        } else {
            TOPICS[self.topic].0.to_string()
        };
        [
            self.id.clone(),
            self.line.to_string(),
            self.seat.clone(),
            self.caller.clone(),
            fmt_local(self.queued),
            self.answered.map(fmt_local).unwrap_or_default(),
            fmt_local(self.ended),
            topic,
            self.rating.map(|r| r.to_string()).unwrap_or_default(),
        ]
    }
}

pub(super) fn write(world: &World, args: &Args, dir: &Path) -> anyhow::Result<Written> {
    let mut rng = Rng::derive(world.seed, "hotline");
    let year = world.year;
    let first = days(year, 1, 1);
    let last = days(year, 12, 31);
    let per_day = 110_000.0 * args.scale / 365.0;
    let topic_cum = cumulative(TOPICS.iter().map(|t| t.2));
    let mut written = Written {
        feed: "hotline",
        ..Default::default()
    };
    let mut yesterday: Vec<Call> = Vec::new();
    for (i, day) in (first..=last).enumerate() {
        let date = date_of(day);
        use chrono::Datelike;
        let weekend = date.weekday().number_from_monday() >= 6;
        let jitter = rng.uniform(0.85, 1.15);
        let n = rng.count(per_day * if weekend { 0.6 } else { 1.16 } * jitter);
        let day_start = day as i64 * 86_400;
        let mut calls: Vec<Call> = Vec::with_capacity(n + 4);
        for k in 0..n {
            let secs = if rng.chance(0.85) {
                rng.int(8 * 3600, 20 * 3600 - 1)
            } else {
                rng.int(0, 86_399)
            };
            calls.push(draw_call(
                world,
                &mut rng,
                &topic_cum,
                format!("HL{}{:06}", date.format("%Y%m%d"), k + 1),
                day_start + secs,
            ));
        }
        // The quarter edges: one call in the last second of a quarter, one in the first of the next.
        if date.day() == 1 && date.month0().is_multiple_of(3) && i > 0 {
            calls.push(draw_call(
                world,
                &mut rng,
                &topic_cum,
                format!("HL{}EDGE0", date.format("%Y%m%d")),
                day_start,
            ));
        }
        if (date + chrono::Days::new(1)).day() == 1 && date.month().is_multiple_of(3) {
            calls.push(draw_call(
                world,
                &mut rng,
                &topic_cum,
                format!("HL{}EDGE9", date.format("%Y%m%d")),
                day_start + 86_399,
            ));
        }
        calls.sort_by_key(|c| c.queued);

        let chinese = date.month() % 2 == 1;
        let encoding = if chinese {
            TextEncoding::Gb18030
        } else if date.day() == 1 {
            TextEncoding::Utf8Bom
        } else {
            TextEncoding::Utf8
        };
        // Odd months: Chinese headers in another column order.
        let mut order: Vec<usize> = (0..9).collect();
        if chinese {
            order.rotate_left(3);
            order.swap(0, 5);
        }
        let names = headers(&HOTLINE_CALLS, chinese);
        let header: Vec<&str> = order.iter().map(|&c| names[c]).collect();
        let mut doc = CsvDoc::new(&header);
        let emit = |doc: &mut CsvDoc, f: [String; 9]| doc.row(order.iter().map(|&c| f[c].clone()));
        // Re-exports of yesterday's calls, with a corrected field (a rating recorded late).
        let reexports: Vec<Call> = yesterday
            .iter()
            .filter(|_| rng.chance(0.01))
            .cloned()
            .collect();
        for mut c in reexports {
            if c.answered.is_some() && c.rating.is_none() {
                c.rating = Some(rng.int(3, 5));
            }
            emit(&mut doc, c.fields(chinese));
        }
        for c in &calls {
            emit(&mut doc, c.fields(chinese));
        }
        if i % 10 == 0 {
            let kind = BAD_KINDS[(i / 10) % BAD_KINDS.len()];
            let mut f = draw_call(
                world,
                &mut rng,
                &topic_cum,
                format!("HL{}BAD", date.format("%Y%m%d")),
                day_start + 43_200,
            );
            f.answered = Some(f.queued + 5);
            f.ended = f.queued + 300;
            let mut fields = f.fields(chinese);
            match kind {
                "missing_call_id" => fields[0].clear(),
                "bad_timestamp" => fields[4] = format!("{year}-02-30 10:00:00"),
                "ended_before_queued" => fields[6] = fmt_local(f.queued - 60),
                "answered_out_of_range" => fields[5] = fmt_local(f.ended + 60),
                "rating_out_of_range" => fields[8] = "6".into(),
                "rating_unanswered" => {
                    fields[5].clear();
                    fields[8] = "4".into();
                }
                "unknown_seat_city" => fields[2] = "510100".into(),
                _ => fields[1] = "110".into(),
            }
            emit(&mut doc, fields);
            written.bad_rows += 1;
        }
        written.rows += doc.rows;
        written.files += 1;
        let path = dir.join(format!("calls-{}.csv", date.format("%Y-%m-%d")));
        write_text(&path, &doc.finish(), encoding)?;
        yesterday = calls;
    }
    Ok(written)
}

fn draw_call(world: &World, rng: &mut Rng, topic_cum: &[f64], id: String, queued: i64) -> Call {
    let backstop = rng.chance(0.05);
    let city = rng.weighted(&world.city_cum);
    let seat = if backstop {
        plsw_store::PROVINCE_CODE.to_string()
    } else {
        world.cities[city].code.clone()
    };
    let caller = if rng.chance(0.07) {
        String::new()
    } else if rng.chance(0.05) {
        rng.pick(&["110105", "320102", "440305", "999999"])
            .to_string()
    } else if backstop {
        world.counties[world.county_by_pop(rng)].code.clone()
    } else {
        world.counties[world.county_of_city(city, rng)].code.clone()
    };
    let answer_prob = if backstop {
        0.97
    } else {
        world.cities[city].answer_prob
    };
    let (answered, ended, rating) = if rng.chance(answer_prob) {
        let wait = rng.exp(11.0).min(600.0) as i64 + 1;
        let talk = 45 + rng.exp(260.0) as i64;
        let rating = rng.chance(0.27).then(|| {
            let x = rng.f64();
            if x < 0.70 {
                5
            } else if x < 0.90 {
                4
            } else if x < 0.965 {
                3
            } else if x < 0.99 {
                2
            } else {
                1
            }
        });
        (Some(queued + wait), queued + wait + talk, rating)
    } else {
        // A third give up within 10 seconds (short abandoned, outside the answer rate).
        let wait = if rng.chance(0.33) {
            rng.int(1, 9)
        } else {
            rng.int(10, 180)
        };
        (None, queued + wait, None)
    };
    let topic = if rng.chance(0.002) {
        NEW_TOPIC
    } else if rng.chance(0.02) {
        EMPTY_TOPIC
    } else {
        rng.weighted(topic_cum)
    };
    Call {
        id,
        line: if rng.chance(0.10) { "12345" } else { "12348" },
        seat,
        caller,
        queued,
        answered,
        ended,
        topic,
        rating,
    }
}
