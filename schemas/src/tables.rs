//! The tables of the warehouse: their columns, types, Chinese header aliases and docs.
//!
//! A raw table's columns are the feed's columns (typed, codes normalised) followed by the
//! lineage columns every accepted row carries. The Arrow schema is derived from these
//! definitions, so the contract lives here once.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::codes::{self, CodeList};

/// The type of a column, as stored.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Text,
    /// A code of a code list (stored as the code, accepted as code or label).
    Code(&'static CodeList),
    /// A division code: digits kept as text.
    DivisionCode,
    Int,
    Bool,
    Date,
    /// An instant, stored as UTC microseconds; files give local (+08:00) time.
    Timestamp,
    /// Yuan with two decimals, exact.
    Money,
    /// A computed figure (indicators).
    Float,
    /// A `;`-separated list of codes of a code list.
    CodeSet(&'static CodeList),
}

impl Kind {
    pub fn data_type(&self) -> DataType {
        match self {
            Kind::Text | Kind::Code(_) | Kind::DivisionCode => DataType::Utf8,
            Kind::Int => DataType::Int64,
            Kind::Bool => DataType::Boolean,
            Kind::Date => DataType::Date32,
            Kind::Timestamp => timestamp_type(),
            Kind::Money => DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE),
            Kind::Float => DataType::Float64,
            Kind::CodeSet(_) => {
                DataType::List(Arc::new(Field::new("element", DataType::Utf8, true)))
            }
        }
    }
}

pub const MONEY_PRECISION: u8 = 18;
pub const MONEY_SCALE: i8 = 2;

/// `Timestamp(µs, "UTC")`: the one timestamp type of the warehouse (keeps Delta at protocol 1/2).
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// One column of a table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    /// Chinese header aliases a feed may use instead of `name`.
    pub zh: &'static [&'static str],
    pub kind: Kind,
    /// Whether a feed row must have a value (an empty required field quarantines the row).
    pub required: bool,
    pub doc: &'static str,
}

const fn col(
    name: &'static str,
    zh: &'static [&'static str],
    kind: Kind,
    required: bool,
    doc: &'static str,
) -> Column {
    Column {
        name,
        zh,
        kind,
        required,
        doc,
    }
}

/// What sort of table it is, which decides how rows are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// Events from files or the API: history of accepted rows; current state = latest per key.
    Events,
    /// A registry delivered whole as of a date.
    Snapshot,
    /// Facts keyed by columns: a later row for a key replaces the earlier one.
    Keyed,
    /// Reference data shipped in `seeds/` (divisions).
    Reference,
    /// Bookkeeping of the warehouse itself (`loads`, `quarantine`).
    System,
    /// Computed by `plsw transform` from the others (`indicators`).
    Derived,
}

#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    pub doc: &'static str,
    pub kind: TableKind,
    /// The columns a feed delivers (for a raw table), or all columns (for the others).
    pub columns: &'static [Column],
    /// The key whose latest row is the current state (raw tables).
    pub key: &'static [&'static str],
}

/// Lineage columns appended to every raw table.
pub const LINEAGE: &[Column] = &[
    col("load_id", &[], Kind::Text, true, "The load that brought the row (see `loads`)"),
    col(
        "loaded_from",
        &[],
        Kind::Text,
        true,
        "File path or API URL the row came from (not `source`: funding has a column of that name)",
    ),
    col(
        "record",
        &[],
        Kind::Int,
        true,
        "Position in the source: 1-based CSV data record (header not counted), XLSX sheet row, or item number in a pull",
    ),
    col("loaded_at", &[], Kind::Timestamp, true, "When the load ran (UTC)"),
];

/// Snapshot tables carry the date the registry is as of.
pub const AS_OF: Column = col(
    "as_of",
    &["截至日期"],
    Kind::Date,
    true,
    "The date the registry snapshot is as of (given when loading)",
);

impl Table {
    /// Whether the stored table has lineage columns (every feed table).
    pub fn has_lineage(&self) -> bool {
        matches!(
            self.kind,
            TableKind::Events | TableKind::Snapshot | TableKind::Keyed
        )
    }

    /// Every stored column, in order: the feed's, `as_of` for snapshots, then lineage.
    pub fn stored_columns(&self) -> Vec<Column> {
        let mut cols: Vec<Column> = self.columns.to_vec();
        if self.kind == TableKind::Snapshot {
            cols.push(AS_OF);
        }
        if self.has_lineage() {
            cols.extend_from_slice(LINEAGE);
        }
        cols
    }

    /// The Arrow schema of the stored table, with each column's doc as field metadata.
    pub fn schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .stored_columns()
            .iter()
            .map(|c| {
                Field::new(c.name, c.kind.data_type(), !c.required).with_metadata(
                    [("doc".to_string(), c.doc.to_string())]
                        .into_iter()
                        .collect(),
                )
            })
            .collect();
        Arc::new(Schema::new(fields))
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

use Kind::*;

pub const HOTLINE_CALLS: Table = Table {
    name: "hotline_calls",
    doc: "12348 hotline call detail records (F1), every accepted row of every load",
    kind: TableKind::Events,
    key: &["call_id"],
    columns: &[
        col("call_id", &["通话编号"], Text, true, "Call id of the hotline platform"),
        col("line", &["热线号码"], Code(&codes::LINES), true, "12348, or 12345 for a call routed from the government hotline"),
        col("seat_city_code", &["接听城市代码"], DivisionCode, true, "City whose seat answered (6 digits), or 410000 for the provincial backstop"),
        col("caller_county_code", &["来电区县代码"], DivisionCode, false, "Caller's county by number attribution; null when empty or not a county of the province"),
        col("queued_at", &["进线时间"], Timestamp, true, "When the call entered the queue"),
        col("answered_at", &["接通时间"], Timestamp, false, "When a seat answered; null = not answered"),
        col("ended_at", &["结束时间"], Timestamp, true, "When the call ended"),
        col("topic", &["咨询类别"], Code(&codes::TOPICS), true, "Consultation category; empty or unknown labels become `other`"),
        col("rating", &["评价"], Int, false, "Caller's rating 1-5 (5 非常满意 … 1 非常不满意); answered calls only"),
    ],
};

pub const CASES: Table = Table {
    name: "cases",
    doc: "Case-management exports (F3): mediation, notarization, legal aid, judicial appraisal",
    kind: TableKind::Events,
    key: &["case_type", "case_id"],
    columns: &[
        col(
            "case_id",
            &["案件编号"],
            Text,
            true,
            "Case number of the case system",
        ),
        col(
            "case_type",
            &["案件类型"],
            Code(&codes::CASE_TYPES),
            true,
            "mediation, notarization, legal_aid or judicial_appraisal",
        ),
        col(
            "county_code",
            &["区县代码"],
            DivisionCode,
            true,
            "County of the case, or a city code for city-level organisations",
        ),
        col(
            "accepted_on",
            &["受理日期"],
            Date,
            true,
            "Date the case was accepted",
        ),
        col(
            "closed_on",
            &["结案日期"],
            Date,
            false,
            "Date the case was closed; null while open",
        ),
        col(
            "outcome",
            &["结果"],
            Code(&codes::OUTCOMES),
            false,
            "Mediation outcome: success or failed (other case types: null)",
        ),
        col(
            "migrant_worker",
            &["农民工"],
            Bool,
            true,
            "A migrant worker's case; empty = false",
        ),
        col(
            "amount_recovered_yuan",
            &["挽回金额(元)", "挽回金额（元）", "挽回金额"],
            Money,
            false,
            "Wages or money recovered, yuan",
        ),
    ],
};

pub const WORK_ORDER_VERSIONS: Table = Table {
    name: "work_order_versions",
    doc: "Versions of online work orders (F2), pulled from the platform's API: a row per version (order_id, updated_at) and content received; work_order_versions_current has each version once, with its latest content",
    kind: TableKind::Events,
    key: &["order_id", "updated_at"],
    columns: &[
        col("order_id", &[], Text, true, "Work-order id"),
        col("updated_at", &[], Timestamp, true, "The version's time"),
        col(
            "created_at",
            &[],
            Timestamp,
            true,
            "When the order was created",
        ),
        col("accepted_at", &[], Timestamp, false, "When it was accepted"),
        col(
            "closed_at",
            &[],
            Timestamp,
            false,
            "When it was closed; set exactly when status = closed",
        ),
        col("due_at", &[], Timestamp, true, "When it is due"),
        col(
            "status",
            &[],
            Code(&codes::WORK_ORDER_STATUSES),
            true,
            "submitted, accepted, transferred, closed or cancelled",
        ),
        col(
            "channel",
            &[],
            Code(&codes::CHANNELS),
            true,
            "onsite, hotline, online or app",
        ),
        col(
            "platform_level",
            &[],
            Code(&codes::PLATFORM_LEVELS),
            true,
            "Level of the handling platform",
        ),
        col(
            "division_code",
            &[],
            DivisionCode,
            true,
            "The platform's division (6, 9 or 12 digits; 410000 for the province)",
        ),
        col(
            "service_type",
            &[],
            Code(&codes::SERVICE_TYPES),
            true,
            "Service asked for",
        ),
        col(
            "green_channel",
            &[],
            Bool,
            true,
            "Migrant-worker wage-arrears green channel",
        ),
        col(
            "rating",
            &[],
            Int,
            false,
            "Applicant's rating 1-5, set when closed",
        ),
    ],
};

pub const PLATFORMS: Table = Table {
    name: "platforms",
    doc: "Registry of physical platforms at four levels, snapshots as of a date",
    kind: TableKind::Snapshot,
    key: &["platform_id"],
    columns: &[
        col(
            "platform_id",
            &["平台编号"],
            Text,
            true,
            "Platform id of the registry",
        ),
        col(
            "level",
            &["层级", "平台层级"],
            Code(&codes::LEVELS),
            true,
            "city, county, township or village",
        ),
        col(
            "division_code",
            &["区划代码"],
            DivisionCode,
            true,
            "The platform's division (6, 9 or 12 digits)",
        ),
        col(
            "name",
            &["名称", "平台名称"],
            Text,
            true,
            "Name of the center, station or workroom",
        ),
        col(
            "built_on",
            &["建成日期"],
            Date,
            false,
            "Date built; null = not built yet",
        ),
        col(
            "operating",
            &["是否运行", "运行"],
            Bool,
            true,
            "Whether it operates; empty = false",
        ),
        col(
            "services",
            &["入驻服务"],
            CodeSet(&codes::PLATFORM_SERVICES),
            false,
            "Services settled in it",
        ),
        col(
            "equipment",
            &["设备"],
            CodeSet(&codes::EQUIPMENT),
            false,
            "Equipment it has",
        ),
        col(
            "star_rating",
            &["星级"],
            Int,
            false,
            "Star rating 0-5 (township judicial offices)",
        ),
    ],
};

pub const STAFF: Table = Table {
    name: "staff",
    doc: "Registry of staff, mediators, advisers, lawyers and notaries, snapshots as of a date",
    kind: TableKind::Snapshot,
    key: &["staff_id", "division_code"],
    columns: &[
        col(
            "staff_id",
            &["人员编号"],
            Text,
            true,
            "Person id of the registry",
        ),
        col(
            "role",
            &["角色", "岗位"],
            Code(&codes::ROLES),
            true,
            "Role of the person in this place",
        ),
        col(
            "full_time",
            &["是否专职", "专职"],
            Bool,
            true,
            "Full time; empty = false",
        ),
        col(
            "division_code",
            &["区划代码"],
            DivisionCode,
            true,
            "Where the person serves (6, 9 or 12 digits; a city code for city-level staff)",
        ),
        col("active_from", &["起始日期"], Date, true, "First day active"),
        col(
            "active_to",
            &["终止日期"],
            Date,
            false,
            "Last day active; null = still active",
        ),
    ],
};

pub const FUNDING: Table = Table {
    name: "funding",
    doc: "Funding per county, quarter, source and program (keyed facts)",
    kind: TableKind::Keyed,
    key: &["county_code", "year", "quarter", "source", "program"],
    columns: &[
        col(
            "county_code",
            &["区县代码"],
            DivisionCode,
            true,
            "County the money is for",
        ),
        col("year", &["年度"], Int, true, "Year"),
        col("quarter", &["季度"], Int, true, "Quarter 1-4"),
        col(
            "source",
            &["来源", "资金来源"],
            Code(&codes::FUNDING_SOURCES),
            true,
            "Where the money comes from",
        ),
        col(
            "program",
            &["项目", "用途"],
            Code(&codes::PROGRAMS),
            true,
            "What it is for",
        ),
        col(
            "amount_yuan",
            &["金额(元)", "金额（元）", "金额"],
            Money,
            true,
            "Amount, yuan, ≥ 0",
        ),
        col(
            "in_budget",
            &["是否纳入预算", "纳入预算"],
            Bool,
            true,
            "In the county budget; empty = false",
        ),
    ],
};

pub const POPULATION: Table = Table {
    name: "population",
    doc: "Resident population per county and year (keyed facts)",
    kind: TableKind::Keyed,
    key: &["county_code", "year"],
    columns: &[
        col("county_code", &["区县代码"], DivisionCode, true, "County"),
        col("year", &["年度"], Int, true, "Year"),
        col("population", &["人口", "常住人口"], Int, true, "Persons"),
    ],
};

pub const QUARANTINE: Table = Table {
    name: "quarantine",
    doc: "Every rejected row or item, with the reason and its raw values",
    kind: TableKind::System,
    key: &[],
    columns: &[
        col("load_id", &[], Text, true, "The load that read the row"),
        col("feed", &[], Code(&codes::FEEDS), true, "Feed of the row"),
        col("source", &[], Text, true, "File path or API base URL"),
        col(
            "record",
            &[],
            Int,
            true,
            "Position in the source (as in the raw tables)",
        ),
        col(
            "reason",
            &[],
            Text,
            true,
            "Reason code, e.g. missing_required, bad_timestamp",
        ),
        col(
            "message",
            &[],
            Text,
            true,
            "Readable explanation naming the column and value",
        ),
        col(
            "raw",
            &[],
            Text,
            true,
            "The raw values as text: a JSON object of header → value, or the raw item",
        ),
        col("loaded_at", &[], Timestamp, true, "When the load ran (UTC)"),
    ],
};

pub const LOADS: Table = Table {
    name: "loads",
    doc: "One row per file or pull: what was read, accepted and quarantined, and when",
    kind: TableKind::System,
    key: &["load_id"],
    columns: &[
        col(
            "load_id",
            &[],
            Text,
            true,
            "Id of the load: derived from feed, content and as-of date (a pull: feed, source, position and items)",
        ),
        col(
            "load_seq",
            &[],
            Int,
            true,
            "Order of committed loads: a later load's rows win",
        ),
        col("feed", &[], Code(&codes::FEEDS), true, "Feed loaded"),
        col("source", &[], Text, true, "File path or API base URL"),
        col(
            "content_sha256",
            &[],
            Text,
            true,
            "SHA-256 of the file's bytes; for a pull, of the items the load stored",
        ),
        col(
            "as_of",
            &[],
            Date,
            false,
            "Snapshot date (platforms, staff)",
        ),
        col(
            "encoding",
            &[],
            Text,
            false,
            "utf-8, utf-8-bom, gb18030 or xlsx",
        ),
        col("status", &[], Text, true, "committed or failed"),
        col("message", &[], Text, false, "Why a failed load failed"),
        col("rows_read", &[], Int, true, "Records read; for a pull, distinct items received"),
        col(
            "rows_accepted",
            &[],
            Int,
            true,
            "Records accepted into the raw table",
        ),
        col(
            "rows_quarantined",
            &[],
            Int,
            true,
            "Records quarantined; read = accepted + quarantined",
        ),
        col(
            "rows_repeated",
            &[],
            Int,
            true,
            "Pulls: items received more than once (not counted again in read); 0 for files",
        ),
        col(
            "warnings",
            &[],
            Int,
            true,
            "Accepted rows with a warning (e.g. an unknown topic kept as other)",
        ),
        col("bytes", &[], Int, true, "Size of the file; for a pull, of the pages received"),
        col(
            "watermark",
            &[],
            Timestamp,
            false,
            "Pulls: the greatest updated_at received so far; the next pull resumes from it (inclusive)",
        ),
        col(
            "started_at",
            &[],
            Timestamp,
            true,
            "When the load started (UTC)",
        ),
        col(
            "loaded_at",
            &[],
            Timestamp,
            true,
            "When the load committed or failed (UTC)",
        ),
    ],
};

pub const CITIES: Table = Table {
    name: "cities",
    doc: "Cities (prefecture level) of the loaded divisions",
    kind: TableKind::Reference,
    key: &["code"],
    columns: &[
        col(
            "code",
            &[],
            DivisionCode,
            true,
            "6-digit city code, e.g. 410100",
        ),
        col("name", &[], Text, true, "Name, e.g. 郑州市"),
        col(
            "kind",
            &[],
            Text,
            true,
            "prefecture_city or province_direct_county_city",
        ),
    ],
};

pub const COUNTIES: Table = Table {
    name: "counties",
    doc: "County-level units of the loaded divisions (districts, counties, county-level cities, functional zones)",
    kind: TableKind::Reference,
    key: &["code"],
    columns: &[
        col("code", &[], DivisionCode, true, "6-digit county code"),
        col("name", &[], Text, true, "Name, e.g. 中牟县"),
        col("city_code", &[], DivisionCode, true, "The city it belongs to"),
        col("kind", &[], Text, true, "district, county, county_city or functional_zone"),
    ],
};

pub const TOWNSHIPS: Table = Table {
    name: "townships",
    doc: "Townships and streets of the loaded divisions",
    kind: TableKind::Reference,
    key: &["code"],
    columns: &[
        col("code", &[], DivisionCode, true, "9-digit township code"),
        col("name", &[], Text, true, "Name"),
        col(
            "county_code",
            &[],
            DivisionCode,
            true,
            "The county it belongs to",
        ),
        col("kind", &[], Text, true, "street, town, township or other"),
        col(
            "nbs_code_class",
            &[],
            Text,
            true,
            "Class by NBS code range: street, town, township, similar",
        ),
    ],
};

pub const VILLAGES: Table = Table {
    name: "villages",
    doc: "Villages and communities of the loaded divisions",
    kind: TableKind::Reference,
    key: &["code"],
    columns: &[
        col("code", &[], DivisionCode, true, "12-digit village code"),
        col("name", &[], Text, true, "Name"),
        col(
            "township_code",
            &[],
            DivisionCode,
            true,
            "The township it belongs to",
        ),
        col(
            "kind",
            &[],
            Text,
            true,
            "community, village, community_like or village_like",
        ),
    ],
};

pub const INDICATORS: Table = Table {
    name: "indicators",
    doc: "Every indicator of the spec per quarter and scope (plsw transform): one row per quarter × applicable scope and code × indicator, 0 or null where the spec says",
    kind: TableKind::Derived,
    key: &["quarter", "scope", "code", "indicator"],
    columns: &[
        col("quarter", &[], Text, true, "Quarter in local time, e.g. 2025Q3"),
        col("scope", &[], Text, true, "county, city or province"),
        col(
            "code",
            &[],
            DivisionCode,
            true,
            "The county's or city's code, or 410000",
        ),
        col(
            "indicator",
            &[],
            Text,
            true,
            "Indicator id, e.g. hotline.answer_rate (see plsw models)",
        ),
        col(
            "value",
            &[],
            Float,
            false,
            "The value; null where the spec says (no denominator, no snapshot, no population)",
        ),
        col(
            "numerator",
            &[],
            Float,
            false,
            "What was counted or summed (rates, means, per-10k figures)",
        ),
        col(
            "denominator",
            &[],
            Float,
            false,
            "What it was divided by (rates, means, per-10k figures)",
        ),
        col(
            "target",
            &[],
            Float,
            false,
            "The target for the quarter's year (seeds/targets.csv), if any",
        ),
        col(
            "meets_target",
            &[],
            Bool,
            false,
            "Whether the value meets the target (null without a value or a target)",
        ),
    ],
};

/// The raw feed tables.
pub const FEED_TABLES: &[&Table] = &[
    &HOTLINE_CALLS,
    &CASES,
    &WORK_ORDER_VERSIONS,
    &PLATFORMS,
    &STAFF,
    &FUNDING,
    &POPULATION,
];

/// The feed code (as in `loads.feed` and `quarantine.feed`) whose loads write each feed table.
pub const FEED_CODES: &[(&str, &Table)] = &[
    ("hotline", &HOTLINE_CALLS),
    ("cases", &CASES),
    ("work_orders", &WORK_ORDER_VERSIONS),
    ("platforms", &PLATFORMS),
    ("staff", &STAFF),
    ("funding", &FUNDING),
    ("population", &POPULATION),
];

/// The feed code whose loads write `table`, if it is a feed table.
pub fn feed_of(table: &str) -> Option<&'static str> {
    FEED_CODES
        .iter()
        .find(|(_, t)| t.name == table)
        .map(|(f, _)| *f)
}

/// The division tables, province to village.
pub const DIVISION_TABLES: &[&Table] = &[&CITIES, &COUNTIES, &TOWNSHIPS, &VILLAGES];

pub const TRANSFORMS: Table = Table {
    name: "transforms",
    doc: "One row per plsw transform that committed: what it read and which quarters it recomputed",
    kind: TableKind::System,
    key: &["run_id"],
    columns: &[
        col("run_id", &[], Text, true, "Id of the run"),
        col("mode", &[], Text, true, "full or incremental"),
        col(
            "from_quarter",
            &[],
            Text,
            true,
            "The first quarter recomputed; every later one was recomputed too",
        ),
        col("quarters", &[], Int, true, "Quarters recomputed"),
        col(
            "reason",
            &[],
            Text,
            true,
            "Why: the feeds whose new loads touched from_quarter, or why the run was full",
        ),
        col(
            "max_load_seq",
            &[],
            Int,
            true,
            "The last committed load the run read; the next run looks at the loads after it",
        ),
        col(
            "divisions_sha256",
            &[],
            Text,
            true,
            "The divisions the run read (another set makes the next run full)",
        ),
        col(
            "models_sha256",
            &[],
            Text,
            true,
            "The models and targets the run used (a change makes the next run full)",
        ),
        col("rows", &[], Int, true, "Rows of indicators written"),
        col(
            "started_at",
            &[],
            Timestamp,
            true,
            "When the run started (UTC)",
        ),
        col(
            "finished_at",
            &[],
            Timestamp,
            true,
            "When it committed (UTC)",
        ),
    ],
};

pub const TOKENS: Table = Table {
    name: "tokens",
    doc: "API tokens of the member units, stored as SHA-256 hashes; never reachable from user SQL",
    kind: TableKind::System,
    key: &["token_id"],
    columns: &[
        col(
            "token_id",
            &[],
            Text,
            true,
            "Short id of the token (to list and revoke it)",
        ),
        col(
            "unit_id",
            &[],
            Text,
            true,
            "The member unit (seeds/member_units.csv)",
        ),
        col("role", &[], Text, true, "admin, analyst or viewer"),
        col(
            "scope",
            &[],
            Text,
            true,
            "province, or city and county codes separated by commas",
        ),
        col("sha256", &[], Text, true, "SHA-256 of the token, hex"),
        col(
            "created_at",
            &[],
            Timestamp,
            true,
            "When it was created (UTC)",
        ),
        col(
            "revoked_at",
            &[],
            Timestamp,
            false,
            "When it was revoked (UTC)",
        ),
    ],
};

pub const ASSESSMENTS: Table = Table {
    name: "assessments",
    doc: "Published quarterly assessments (plsw assess --publish): each revision's result exactly as published, with the table versions and the method it read",
    kind: TableKind::Derived,
    key: &["quarter", "revision"],
    columns: &[
        col("quarter", &[], Text, true, "The quarter assessed, e.g. 2025Q3"),
        col(
            "revision",
            &[],
            Int,
            true,
            "1 for the first publication of the quarter, then 2, 3…; every revision is kept",
        ),
        col("published_at", &[], Timestamp, true, "When it was published (UTC)"),
        col(
            "published_by",
            &[],
            Text,
            true,
            "Who published it (the operating-system user of the CLI)",
        ),
        col(
            "table_versions",
            &[],
            Text,
            true,
            "JSON object: the Delta version of every table the computation read",
        ),
        col(
            "targets_csv",
            &[],
            Text,
            true,
            "The targets file it used, verbatim",
        ),
        col(
            "assessment_toml",
            &[],
            Text,
            true,
            "The weights and tolerance file it used, verbatim",
        ),
        col(
            "result_json",
            &[],
            Text,
            true,
            "The assessment as published (JSON); served byte for byte",
        ),
        col("result_sha256", &[], Text, true, "SHA-256 of result_json, hex"),
    ],
};

/// The tables `plsw transform` writes.
pub const DERIVED_TABLES: &[&Table] = &[&INDICATORS];

/// Every stored table.
pub const ALL: &[&Table] = &[
    &HOTLINE_CALLS,
    &CASES,
    &WORK_ORDER_VERSIONS,
    &PLATFORMS,
    &STAFF,
    &FUNDING,
    &POPULATION,
    &QUARANTINE,
    &LOADS,
    &CITIES,
    &COUNTIES,
    &TOWNSHIPS,
    &VILLAGES,
    &INDICATORS,
    &TRANSFORMS,
    &TOKENS,
    &ASSESSMENTS,
];

pub fn by_name(name: &str) -> Option<&'static Table> {
    ALL.iter().copied().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_columns_are_required() {
        // The current state per key joins on the key with `=` (plsw-store's catalog), which
        // never matches a NULL: a key column must never be empty.
        for t in ALL {
            for k in t.key {
                let c = t
                    .columns
                    .iter()
                    .find(|c| c.name == *k)
                    .unwrap_or_else(|| panic!("{}: key {k} is not a column", t.name));
                assert!(c.required, "{}: key column {k} is not required", t.name);
            }
        }
    }

    #[test]
    fn column_names_are_delta_friendly_and_unique() {
        for t in ALL {
            let schema = t.schema();
            let mut seen = std::collections::HashSet::new();
            for f in schema.fields() {
                assert!(
                    f.name()
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                    "{}.{}",
                    t.name,
                    f.name()
                );
                assert!(
                    seen.insert(f.name().clone()),
                    "{}.{} twice",
                    t.name,
                    f.name()
                );
                assert!(
                    !f.metadata()["doc"].is_empty(),
                    "{}.{} undocumented",
                    t.name,
                    f.name()
                );
            }
        }
    }

    #[test]
    fn raw_tables_carry_lineage_and_snapshots_as_of() {
        let s = PLATFORMS.schema();
        assert!(s.field_with_name("as_of").is_ok());
        assert!(s.field_with_name("load_id").is_ok());
        assert!(HOTLINE_CALLS.schema().field_with_name("as_of").is_err());
        assert!(LOADS.schema().field_with_name("record").is_err());
        for t in FEED_TABLES {
            for k in t.key {
                assert!(t.schema().field_with_name(k).is_ok(), "{}: key {k}", t.name);
            }
        }
    }

    #[test]
    fn every_feed_table_has_one_feed_code() {
        for t in FEED_TABLES {
            assert!(feed_of(t.name).is_some(), "{}", t.name);
        }
        assert_eq!(FEED_CODES.len(), FEED_TABLES.len());
        assert_eq!(feed_of("work_order_versions"), Some("work_orders"));
        assert_eq!(feed_of("loads"), None);
    }

    #[test]
    fn timestamps_are_utc_micros() {
        let s = HOTLINE_CALLS.schema();
        assert_eq!(
            s.field_with_name("queued_at").unwrap().data_type(),
            &timestamp_type()
        );
    }
}
