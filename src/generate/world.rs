//! The synthetic world the feeds are drawn from: the real divisions, with invented populations
//! and a hidden quality per county and answer rate per city.

use std::path::Path;

use anyhow::Context;
use plsw_schemas::tables;
use plsw_store::Divisions;

use super::rng::{cumulative, Rng};
use super::{write_text, CsvDoc, TextEncoding};

/// Total synthetic population of the province (the 2020 census had ≈99.4 M).
const PROVINCE_POPULATION: f64 = 99_400_000.0;

#[derive(Debug, Clone)]
pub struct County {
    pub code: String,
    pub name: String,
    pub city: usize,
    pub kind: String,
    /// Synthetic population of the year before.
    pub pop_prev: i64,
    /// Synthetic population of the year; missing for some counties (the earlier year applies).
    pub pop_cur: Option<i64>,
    /// 0..1: how well the county does; about one in eight is well behind.
    pub quality: f64,
    pub townships: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct City {
    pub code: String,
    pub name: String,
    /// Share of calls a seat of this city answers.
    pub answer_prob: f64,
    pub counties: Vec<usize>,
    /// Cumulative population weights of its counties.
    pub county_cum: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct Township {
    pub code: String,
    pub name: String,
    pub county: usize,
    pub villages: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Village {
    pub code: String,
    pub name: String,
    pub township: usize,
}

#[derive(Debug)]
pub struct World {
    pub seed: u64,
    pub year: i32,
    pub divisions: Divisions,
    pub cities: Vec<City>,
    pub counties: Vec<County>,
    pub townships: Vec<Township>,
    pub villages: Vec<Village>,
    /// Cumulative population weights of all counties.
    pub county_cum: Vec<f64>,
    /// Cumulative population weights of the cities.
    pub city_cum: Vec<f64>,
}

impl World {
    /// The world on the built-in divisions, restricted to `only_cities` when given.
    pub fn new(seed: u64, year: i32, only_cities: &[String]) -> anyhow::Result<World> {
        let all = Divisions::builtin();
        let keep_city = |c: &str| only_cities.is_empty() || only_cities.iter().any(|k| k == c);
        for c in only_cities {
            anyhow::ensure!(
                all.is_city(c),
                "--cities: {c} is not a city of the divisions"
            );
        }
        let cities_rows: Vec<Vec<String>> = all
            .rows(&tables::CITIES)
            .into_iter()
            .filter(|r| keep_city(&r[0]))
            .collect();
        let counties_rows: Vec<Vec<String>> = all
            .rows(&tables::COUNTIES)
            .into_iter()
            .filter(|r| keep_city(&r[2]))
            .collect();
        let county_set: std::collections::HashSet<&str> =
            counties_rows.iter().map(|r| r[0].as_str()).collect();
        let townships_rows: Vec<Vec<String>> = all
            .rows(&tables::TOWNSHIPS)
            .into_iter()
            .filter(|r| county_set.contains(r[2].as_str()))
            .collect();
        let township_set: std::collections::HashSet<&str> =
            townships_rows.iter().map(|r| r[0].as_str()).collect();
        let villages_rows: Vec<Vec<String>> = all
            .rows(&tables::VILLAGES)
            .into_iter()
            .filter(|r| township_set.contains(r[2].as_str()))
            .collect();

        let mut rng = Rng::derive(seed, "world");
        let mut cities: Vec<City> = cities_rows
            .iter()
            .map(|r| City {
                code: r[0].clone(),
                name: r[1].clone(),
                answer_prob: rng.uniform(0.92, 0.985),
                counties: Vec::new(),
                county_cum: Vec::new(),
            })
            .collect();
        // A few cities answer well below the 90% target (the speech: "low answer rates in places").
        let n_low = (cities.len() / 6).max(1);
        for _ in 0..n_low {
            let i = rng.index(cities.len());
            cities[i].answer_prob = rng.uniform(0.74, 0.86);
        }
        let mut counties: Vec<County> = Vec::new();
        for r in &counties_rows {
            let city = cities
                .iter()
                .position(|c| c.code == r[2])
                .expect("city of county");
            let kind_weight = match r[3].as_str() {
                "district" => 1.0,
                "county" => 0.95,
                "county_city" => 1.15,
                _ => 0.22,
            };
            let quality = if rng.chance(0.12) {
                rng.uniform(0.15, 0.45)
            } else {
                rng.uniform(0.6, 1.0)
            };
            counties.push(County {
                code: r[0].clone(),
                name: r[1].clone(),
                city,
                kind: r[3].clone(),
                pop_prev: (kind_weight * rng.uniform(0.55, 1.45) * 1e6) as i64,
                pop_cur: None,
                quality,
                townships: Vec::new(),
            });
        }
        // Scale to the province's total (for a subset of cities, to their share of 181 counties).
        let raw_total: i64 = counties.iter().map(|c| c.pop_prev).sum();
        let target = PROVINCE_POPULATION * counties.len() as f64 / 181.0;
        for c in counties.iter_mut() {
            c.pop_prev = (c.pop_prev as f64 * target / raw_total.max(1) as f64).round() as i64;
            c.pop_cur = if rng.chance(0.1) {
                None
            } else {
                Some((c.pop_prev as f64 * rng.uniform(0.992, 1.008)).round() as i64)
            };
        }
        for (i, c) in counties.iter().enumerate() {
            cities[c.city].counties.push(i);
        }
        for city in cities.iter_mut() {
            city.county_cum =
                cumulative(city.counties.iter().map(|&i| counties[i].pop_prev as f64));
        }
        let mut townships: Vec<Township> = Vec::new();
        for r in &townships_rows {
            let county = counties
                .iter()
                .position(|c| c.code == r[2])
                .expect("county of township");
            counties[county].townships.push(townships.len());
            townships.push(Township {
                code: r[0].clone(),
                name: r[1].clone(),
                county,
                villages: Vec::new(),
            });
        }
        let township_index: std::collections::HashMap<&str, usize> = townships
            .iter()
            .enumerate()
            .map(|(i, t)| (t.code.as_str(), i))
            .collect();
        let mut villages = Vec::with_capacity(villages_rows.len());
        for r in &villages_rows {
            let t = township_index[r[2].as_str()];
            villages.push(Village {
                code: r[0].clone(),
                name: r[1].clone(),
                township: t,
            });
        }
        for (i, v) in villages.iter().enumerate() {
            townships[v.township].villages.push(i);
        }
        let county_cum = cumulative(counties.iter().map(|c| c.pop_prev as f64));
        let city_cum = cumulative(cities.iter().map(|c| {
            c.counties
                .iter()
                .map(|&i| counties[i].pop_prev as f64)
                .sum()
        }));
        let divisions =
            Divisions::from_rows(cities_rows, counties_rows, townships_rows, villages_rows)
                .map_err(|e| anyhow::anyhow!("divisions: {e}"))?;
        Ok(World {
            seed,
            year,
            divisions,
            cities,
            counties,
            townships,
            villages,
            county_cum,
            city_cum,
        })
    }

    /// Writes the divisions of this world in the layout `plsw seeds load` reads.
    pub fn write_divisions(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for def in plsw_schemas::tables::DIVISION_TABLES {
            let rows = self.divisions.rows(def);
            let header: Vec<&str> = def.columns.iter().map(|c| c.name).collect();
            let mut doc = CsvDoc::new(&header);
            for r in &rows {
                doc.row(r);
            }
            write_text(
                &dir.join(format!("{}.csv", def.name)),
                &doc.finish(),
                TextEncoding::Utf8,
            )?;
        }
        Ok(())
    }

    /// A county drawn by population.
    pub fn county_by_pop(&self, rng: &mut Rng) -> usize {
        rng.weighted(&self.county_cum)
    }

    /// A county of a city drawn by population.
    pub fn county_of_city(&self, city: usize, rng: &mut Rng) -> usize {
        let c = &self.cities[city];
        c.counties[rng.weighted(&c.county_cum)]
    }
}

/// Days since the epoch for a date.
pub(super) fn days(y: i32, m: u32, d: u32) -> i32 {
    use chrono::Datelike;
    chrono::NaiveDate::from_ymd_opt(y, m, d)
        .expect("valid date")
        .num_days_from_ce()
        - 719_163
}

/// The date of days since the epoch.
pub(super) fn date_of(days: i32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163).expect("date in range")
}

/// `YYYY-MM-DD`.
pub(super) fn fmt_date(days: i32) -> String {
    date_of(days).format("%Y-%m-%d").to_string()
}

/// `YYYY-MM-DD HH:MM:SS` of a local instant given as seconds since the local epoch.
pub(super) fn fmt_local(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("in range")
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}
