//! Registry snapshots (platforms, staff) at each quarter's end, funding facts per county and
//! quarter (with a revised delivery), and synthetic populations for the year and the one before.

use std::path::Path;

use super::rng::Rng;
use super::world::{days, fmt_date, World};
use super::{write_text, CsvDoc, TextEncoding, Written};
use plsw_schemas::tables;

const CENTER_SERVICES: [&str; 6] = [
    "notarization",
    "judicial_appraisal",
    "legal_exam",
    "legal_aid",
    "mediation",
    "lawyer",
];
const EQUIPMENT: [&str; 4] = ["cctv", "id_reader", "doc_camera", "rating_device"];

pub(super) fn write(world: &World, args: &super::Args, out: &Path) -> anyhow::Result<Vec<Written>> {
    let y = world.year;
    let snapshots = [
        days(y, 3, 31),
        days(y, 6, 30),
        days(y, 9, 30),
        days(y, 12, 31),
    ];
    let platforms = platforms(world);
    let staff = staff(world, args.scale);
    let mut wp = Written {
        feed: "platforms",
        ..Default::default()
    };
    let mut ws = Written {
        feed: "staff",
        ..Default::default()
    };
    let pdir = out.join("platforms");
    let sdir = out.join("staff");
    std::fs::create_dir_all(&pdir)?;
    std::fs::create_dir_all(&sdir)?;
    for (i, &e) in snapshots.iter().enumerate() {
        let mut doc = CsvDoc::new(&super::headers(&tables::PLATFORMS, false));
        for p in &platforms {
            if p.registered > e {
                continue;
            }
            let built = p.built.filter(|&b| b <= e);
            doc.row([
                p.id.clone(),
                p.level.to_string(),
                p.code.clone(),
                p.name.clone(),
                built.map(fmt_date).unwrap_or_default(),
                if built.is_some() && p.operating {
                    "是"
                } else {
                    "否"
                }
                .to_string(),
                p.services.join(";"),
                p.equipment.join(";"),
                p.star.map(|s| s.to_string()).unwrap_or_default(),
            ]);
        }
        let bad = bad_platforms(world, i);
        wp.bad_rows += bad.len();
        for b in bad {
            doc.row(b);
        }
        wp.rows += doc.rows;
        wp.files += 1;
        write_text(
            &pdir.join(format!("{}.csv", fmt_date(e))),
            &doc.finish(),
            TextEncoding::Utf8,
        )?;

        let mut doc = CsvDoc::new(&super::headers(&tables::STAFF, false));
        for s in &staff {
            if s.from > e {
                continue;
            }
            doc.row([
                s.id.clone(),
                s.role.to_string(),
                if s.full_time { "1" } else { "0" }.to_string(),
                s.code.clone(),
                fmt_date(s.from),
                s.to.filter(|&t| t <= e + 30)
                    .map(fmt_date)
                    .unwrap_or_default(),
            ]);
        }
        let county = &world.counties[0].code;
        let bad: Vec<[String; 6]> = vec![
            [
                "".into(),
                "mediator".into(),
                "1".into(),
                county.clone(),
                "2020-01-01".into(),
                "".into(),
            ],
            [
                format!("BADS{i}1"),
                "judge".into(),
                "1".into(),
                county.clone(),
                "2020-01-01".into(),
                "".into(),
            ],
            [
                format!("BADS{i}2"),
                "lawyer".into(),
                "1".into(),
                "410000".into(),
                "2020-01-01".into(),
                "".into(),
            ],
            [
                format!("BADS{i}3"),
                "lawyer".into(),
                "1".into(),
                county.clone(),
                "2020-01-01".into(),
                "2019-12-31".into(),
            ],
            [
                format!("BADS{i}4"),
                "notary".into(),
                "sometimes".into(),
                county.clone(),
                "2020-01-01".into(),
                "".into(),
            ],
        ];
        ws.bad_rows += bad.len();
        for b in bad {
            doc.row(b);
        }
        ws.rows += doc.rows;
        ws.files += 1;
        write_text(
            &sdir.join(format!("{}.csv", fmt_date(e))),
            &doc.finish(),
            TextEncoding::Utf8,
        )?;
    }
    Ok(vec![wp, ws, funding(world, out)?, population(world, out)?])
}

struct Platform {
    id: String,
    level: &'static str,
    code: String,
    name: String,
    /// When it entered the registry (planned platforms are listed before they are built).
    registered: i32,
    built: Option<i32>,
    operating: bool,
    services: Vec<&'static str>,
    equipment: Vec<&'static str>,
    star: Option<i64>,
}

fn platforms(world: &World) -> Vec<Platform> {
    let mut rng = Rng::derive(world.seed, "platforms");
    let y = world.year;
    let long_ago = days(y - 3, 1, 1);
    let mut out = Vec::new();
    // A built date: mostly before the year, some during it, some never.
    let built = |rng: &mut Rng, p_built: f64| -> Option<i32> {
        if !rng.chance(p_built) {
            None
        } else if rng.chance(0.85) {
            Some(rng.int(days(y - 5, 1, 1) as i64, days(y - 1, 12, 31) as i64) as i32)
        } else {
            Some(rng.int(days(y, 1, 1) as i64, days(y, 12, 31) as i64) as i32)
        }
    };
    let center = |rng: &mut Rng, q: f64| -> (Vec<&'static str>, Vec<&'static str>) {
        let mut services = vec!["mediation", "legal_aid"];
        if rng.chance(0.45 + 0.35 * q) {
            services.insert(0, "notarization");
        }
        for s in &CENTER_SERVICES[1..] {
            if !services.contains(s) && rng.chance(0.5) {
                services.push(s);
            }
        }
        let equipment = if rng.chance(0.35 + 0.5 * q) {
            EQUIPMENT.to_vec()
        } else {
            EQUIPMENT
                .iter()
                .copied()
                .filter(|_| rng.chance(0.5))
                .collect()
        };
        (services, equipment)
    };
    for (ci, city) in world.cities.iter().enumerate() {
        let q = city
            .counties
            .iter()
            .map(|&i| world.counties[i].quality)
            .sum::<f64>()
            / city.counties.len().max(1) as f64;
        let (services, equipment) = center(&mut rng, q);
        out.push(Platform {
            id: format!("PC{}", city.code),
            level: "city",
            code: city.code.clone(),
            name: format!("{}公共法律服务中心", city.name),
            registered: long_ago,
            built: built(&mut rng, if ci % 7 == 3 { 0.4 } else { 0.97 }),
            operating: rng.chance(0.97),
            services,
            equipment,
            star: None,
        });
    }
    for c in &world.counties {
        let (services, equipment) = center(&mut rng, c.quality);
        out.push(Platform {
            id: format!("PX{}", c.code),
            level: "county",
            code: c.code.clone(),
            name: format!("{}公共法律服务中心", c.name),
            registered: long_ago,
            built: built(&mut rng, 0.55 + 0.45 * c.quality),
            operating: rng.chance(0.9 + 0.1 * c.quality),
            services,
            equipment,
            star: None,
        });
        for &ti in &c.townships {
            let t = &world.townships[ti];
            out.push(Platform {
                id: format!("PT{}", t.code),
                level: "township",
                code: t.code.clone(),
                name: format!("{}公共法律服务工作站", t.name),
                registered: long_ago,
                built: built(&mut rng, 0.7 + 0.3 * c.quality),
                operating: rng.chance(0.85 + 0.15 * c.quality),
                services: vec!["mediation"],
                equipment: Vec::new(),
                star: Some(rng.int(1, 5)),
            });
            for &vi in &t.villages {
                let v = &world.villages[vi];
                if !rng.chance(0.9 + 0.1 * c.quality) {
                    continue; // not even planned yet
                }
                out.push(Platform {
                    id: format!("PV{}", v.code),
                    level: "village",
                    code: v.code.clone(),
                    name: format!("{}公共法律服务工作室", v.name),
                    registered: if rng.chance(0.97) {
                        long_ago
                    } else {
                        days(world.year, 7, 1)
                    },
                    built: built(&mut rng, 0.93 + 0.07 * c.quality),
                    operating: true,
                    services: Vec::new(),
                    equipment: Vec::new(),
                    star: None,
                });
            }
        }
    }
    out
}

fn bad_platforms(world: &World, i: usize) -> Vec<Vec<String>> {
    let county = world.counties[0].code.clone();
    let row = |id: &str,
               level: &str,
               code: &str,
               name: &str,
               built: &str,
               op: &str,
               services: &str,
               star: &str| {
        vec![
            id.into(),
            level.into(),
            code.into(),
            name.into(),
            built.into(),
            op.into(),
            services.into(),
            String::new(),
            star.into(),
        ]
    };
    vec![
        row(
            &format!("BADP{i}1"),
            "county",
            "999999",
            "不存在县中心",
            "2020-01-01",
            "是",
            "",
            "",
        ),
        row(
            &format!("BADP{i}2"),
            "township",
            &county,
            "层级不符",
            "2020-01-01",
            "是",
            "",
            "",
        ),
        row(
            &format!("BADP{i}3"),
            "county",
            &county,
            "日期错误",
            "2020-02-30",
            "是",
            "",
            "",
        ),
        row(
            &format!("BADP{i}4"),
            "county",
            &county,
            "未知服务",
            "2020-01-01",
            "是",
            "tarot",
            "",
        ),
        row(
            &format!("BADP{i}5"),
            "county",
            &county,
            "星级错误",
            "2020-01-01",
            "是",
            "",
            "7",
        ),
        row(
            &format!("BADP{i}6"),
            "county",
            &county,
            "",
            "2020-01-01",
            "是",
            "",
            "",
        ),
        row(
            &format!("BADP{i}7"),
            "province",
            "410000",
            "省级",
            "2020-01-01",
            "是",
            "",
            "",
        ),
    ]
}

struct Person {
    id: String,
    role: &'static str,
    full_time: bool,
    code: String,
    from: i32,
    to: Option<i32>,
}

fn staff(world: &World, scale: f64) -> Vec<Person> {
    let mut rng = Rng::derive(world.seed, "staff");
    let y = world.year;
    let mut out = Vec::new();
    let mut next_id = 0usize;
    let mut id = |prefix: &str| {
        next_id += 1;
        format!("{prefix}{next_id:07}")
    };
    let tenure = |rng: &mut Rng| -> (i32, Option<i32>) {
        let from = if rng.chance(0.9) {
            rng.int(days(y - 8, 1, 1) as i64, days(y - 1, 12, 31) as i64) as i32
        } else {
            rng.int(days(y, 1, 1) as i64, days(y, 12, 31) as i64) as i32
        };
        let to = rng
            .chance(0.05)
            .then(|| rng.int(days(y, 1, 1) as i64, days(y, 12, 31) as i64) as i32)
            .filter(|t| *t >= from);
        (from, to)
    };
    // Village legal advisers: one person serves 2–5 villages of a township; villages of
    // counties behind are often without one. Not scaled: they are tied to the real villages.
    for t in &world.townships {
        let q = world.counties[t.county].quality;
        let mut k = 0;
        while k < t.villages.len() {
            let n = rng.int(2, 5) as usize;
            if rng.chance(0.55 + 0.45 * q) {
                let pid = id("A");
                let (from, to) = tenure(&mut rng);
                for &vi in &t.villages[k..(k + n).min(t.villages.len())] {
                    out.push(Person {
                        id: pid.clone(),
                        role: "village_legal_adviser",
                        full_time: false,
                        code: world.villages[vi].code.clone(),
                        from,
                        to,
                    });
                }
            }
            k += n;
        }
    }
    // Mediators: ≈150k at scale 1, ≈19% full time (fewer where a county is behind).
    let n_med = (150_000.0 * scale * world.counties.len() as f64 / 181.0) as usize;
    for _ in 0..n_med {
        let c = &world.counties[world.county_by_pop(&mut rng)];
        let code = if !c.townships.is_empty() && rng.chance(0.7) {
            let t = &world.townships[*rng.pick(&c.townships)];
            if !t.villages.is_empty() && rng.chance(0.6) {
                world.villages[*rng.pick(&t.villages)].code.clone()
            } else {
                t.code.clone()
            }
        } else {
            c.code.clone()
        };
        let (from, to) = tenure(&mut rng);
        out.push(Person {
            id: id("M"),
            role: "mediator",
            full_time: rng.chance(0.08 + 0.14 * c.quality),
            code,
            from,
            to,
        });
    }
    // Lawyers: ≈20k, concentrated in districts; notaries ≈1k, none in some counties.
    let n_law = (20_000.0 * scale * world.counties.len() as f64 / 181.0) as usize;
    let law_w = super::rng::cumulative(
        world
            .counties
            .iter()
            .map(|c| c.pop_prev as f64 * if c.kind == "district" { 3.0 } else { 0.6 } * c.quality),
    );
    for _ in 0..n_law {
        let c = &world.counties[rng.weighted(&law_w)];
        let code = if rng.chance(0.1) {
            world.cities[c.city].code.clone()
        } else {
            c.code.clone()
        };
        let (from, to) = tenure(&mut rng);
        out.push(Person {
            id: id("L"),
            role: "lawyer",
            full_time: true,
            code,
            from,
            to,
        });
    }
    for c in &world.counties {
        if rng.chance(0.25 * (1.2 - c.quality)) {
            continue; // a notary blank area
        }
        for _ in 0..rng.count(5.0 * scale.max(0.2)).max(1) {
            let (from, to) = tenure(&mut rng);
            out.push(Person {
                id: id("N"),
                role: "notary",
                full_time: true,
                code: c.code.clone(),
                from,
                to,
            });
        }
    }
    for t in &world.townships {
        for _ in 0..rng.int(2, 4) {
            let (from, to) = tenure(&mut rng);
            out.push(Person {
                id: id("J"),
                role: "judicial_office_staff",
                full_time: true,
                code: t.code.clone(),
                from,
                to,
            });
        }
    }
    for c in &world.counties {
        for _ in 0..rng.int(3, 8) {
            let (from, to) = tenure(&mut rng);
            out.push(Person {
                id: id("P"),
                role: "platform_staff",
                full_time: rng.chance(0.7),
                code: c.code.clone(),
                from,
                to,
            });
        }
    }
    out
}

fn funding(world: &World, out: &Path) -> anyhow::Result<Written> {
    let mut rng = Rng::derive(world.seed, "funding");
    let dir = out.join("funding");
    std::fs::create_dir_all(&dir)?;
    let header = super::headers(&tables::FUNDING, true);
    let mut doc = CsvDoc::new(&header);
    let mut revised = CsvDoc::new(&header);
    let mut w = Written {
        feed: "funding",
        files: 2,
        ..Default::default()
    };
    // ≈CNY 200M of transfers a year over 181 counties, plus county budgets.
    let per_county_quarter = 200_000_000.0 / 181.0 / 4.0;
    for c in &world.counties {
        let budgets = rng.chance(0.55 + 0.45 * c.quality); // some counties put nothing in budget
        for q in 1..=4 {
            let mut rows: Vec<(&str, &str, f64, bool)> = vec![
                ("central_transfer", "legal_aid", 0.35, false),
                ("provincial_transfer", "village_legal_adviser", 0.30, false),
                ("provincial_transfer", "mediation", 0.20, false),
                ("central_transfer", "platform", 0.15, false),
            ];
            if budgets {
                rows.push(("county_budget", "judicial_office", 0.25, true));
                rows.push(("county_budget", "legal_aid", 0.20, true));
            }
            for (source, program, share, in_budget) in rows {
                let fen = (per_county_quarter * share * rng.uniform(0.6, 1.4) * 100.0) as i64;
                let fields = [
                    c.code.clone(),
                    world.year.to_string(),
                    q.to_string(),
                    source.to_string(),
                    program.to_string(),
                    format!("{}.{:02}", fen / 100, fen % 100),
                    if in_budget { "是" } else { "否" }.to_string(),
                ];
                if rng.chance(0.02) {
                    // a correction delivered later for the same key
                    let mut f = fields.clone();
                    let fen2 = fen + rng.int(-50_000, 50_000).max(-fen);
                    f[5] = format!("{}.{:02}", fen2 / 100, fen2 % 100);
                    revised.row(f);
                }
                doc.row(fields);
            }
        }
    }
    let y = world.year.to_string();
    let c0 = world.counties[0].code.clone();
    let city = world.cities[0].code.clone();
    for bad in [
        [
            city,
            y.clone(),
            "1".into(),
            "central_transfer".into(),
            "legal_aid".into(),
            "100.00".into(),
            "否".into(),
        ],
        [
            c0.clone(),
            y.clone(),
            "5".into(),
            "central_transfer".into(),
            "legal_aid".into(),
            "100.00".into(),
            "否".into(),
        ],
        [
            c0.clone(),
            y.clone(),
            "2".into(),
            "central_transfer".into(),
            "legal_aid".into(),
            "-5.00".into(),
            "否".into(),
        ],
        [
            c0,
            y,
            "3".into(),
            "lottery".into(),
            "legal_aid".into(),
            "100.00".into(),
            "否".into(),
        ],
    ] {
        doc.row(bad);
        w.bad_rows += 1;
    }
    w.rows = doc.rows + revised.rows;
    write_text(
        &dir.join(format!("funding-{}-1.csv", world.year)),
        &doc.finish(),
        TextEncoding::Gb18030,
    )?;
    write_text(
        &dir.join(format!("funding-{}-2-revised.csv", world.year)),
        &revised.finish(),
        TextEncoding::Gb18030,
    )?;
    Ok(w)
}

fn population(world: &World, out: &Path) -> anyhow::Result<Written> {
    let dir = out.join("population");
    std::fs::create_dir_all(&dir)?;
    let mut doc = CsvDoc::new(&super::headers(&tables::POPULATION, false));
    for c in &world.counties {
        doc.row([
            c.code.clone(),
            (world.year - 1).to_string(),
            c.pop_prev.to_string(),
        ]);
        if let Some(p) = c.pop_cur {
            doc.row([c.code.clone(), world.year.to_string(), p.to_string()]);
        }
    }
    doc.row([
        "410199".to_string(),
        world.year.to_string(),
        "1000".to_string(),
    ]);
    doc.row([
        world.counties[0].code.clone(),
        (world.year - 2).to_string(),
        "-1".to_string(),
    ]);
    let w = Written {
        feed: "population",
        files: 1,
        rows: doc.rows,
        bad_rows: 2,
    };
    write_text(
        &dir.join("population.csv"),
        &doc.finish(),
        TextEncoding::Utf8,
    )?;
    Ok(w)
}
