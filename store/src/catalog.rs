//! What analysts see: every table of the contract as a view over the committed rows, plus a
//! `_current` view per feed with the current state per key, registered in one `SessionContext`.
//!
//! The physical Delta tables live only inside the plans of these views: they are registered in
//! a private context that builds the plans and are never reachable by name from the caller's
//! context. So rows of a load that never committed (killed mid-way) are invisible everywhere.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::catalog::MemTable;
use datafusion::datasource::ViewTable;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use plsw_schemas::tables::{self, Table, TableKind};

use crate::divisions::{Divisions, PROVINCE_CODE};
use crate::error::Result;
use crate::store::Warehouse;

/// Suffix of the view holding the current state per key of a feed table.
pub const CURRENT_SUFFIX: &str = "_current";

/// Suffix of a current state on disk, registered only in the private context of the views.
const STATE_SUFFIX: &str = "__state";

/// The loads whose rows are visible.
const COMMITTED: &str = "SELECT load_id, load_seq FROM loads WHERE status = 'committed'";

/// What a caller may see of one table or view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Every row.
    Full,
    /// Not registered at all: unknown to the caller's SQL and to `information_schema`.
    Hidden,
    /// Only the rows matching this SQL predicate over the view's columns.
    Rows(String),
}

/// Registers every table and view of the warehouse in `ctx`, reading the Delta tables at their
/// latest versions. Returns the divisions in force.
pub async fn register_all(ctx: &SessionContext, wh: &Warehouse) -> Result<Divisions> {
    register_all_with(ctx, wh, &|_, _| Access::Full).await
}

/// As [`register_all`], with row scope: `access` says, per view name (given the divisions in
/// force), whether the caller sees it whole, filtered or not at all. The filter is part of the view's plan, so no SQL the caller
/// writes (joins, subqueries, CTEs, UNION) can reach the rows it leaves out.
pub async fn register_all_with(
    ctx: &SessionContext,
    wh: &Warehouse,
    access: &(dyn Fn(&str, &Divisions) -> Access + Send + Sync),
) -> Result<Divisions> {
    Ok(register_views(ctx, wh, access).await?.divisions)
}

/// What [`register_views`] registered.
pub(crate) struct ViewPlan {
    pub divisions: Divisions,
    /// The greatest `load_seq` in `loads` (committed or not), 0 for none: the states written
    /// from these views cover every load up to it.
    pub max_seq: i64,
}

/// [`register_all_with`], saying how each `_current` view reads.
pub(crate) async fn register_views(
    ctx: &SessionContext,
    wh: &Warehouse,
    access: &(dyn Fn(&str, &Divisions) -> Access + Send + Sync),
) -> Result<ViewPlan> {
    let private = wh.raw_context().await?;
    let divisions = Divisions::from_context(&private, wh).await?;
    for t in tables::ALL {
        let table = wh.table(t).await?;
        table
            .update_datafusion_session(&ctx.state())
            .map_err(crate::error::Error::delta(t.name))?;
    }
    let loads = crate::store::load_records(&private).await?;
    let max_seq = loads.iter().map(|l| l.load_seq).max().unwrap_or(0);
    let mut views: Vec<(String, String)> = vec![
        ("loads".into(), "SELECT * FROM loads".into()),
        ("indicators".into(), "SELECT * FROM indicators".into()),
        ("assessments".into(), "SELECT * FROM assessments".into()),
        ("transforms".into(), "SELECT * FROM transforms".into()),
        (
            "quarantine".into(),
            format!("SELECT q.* FROM quarantine q WHERE q.load_id IN (SELECT load_id FROM ({COMMITTED}))"),
        ),
    ];
    for t in tables::FEED_TABLES {
        views.push((t.name.to_string(), history_sql(t)));
        let feed = tables::feed_of(t.name).unwrap_or(t.name);
        let state = wh.state_for(t, max_seq);
        let since = state.as_ref().map_or(i64::MIN, |s| s.seq);
        let newer: Vec<&str> = loads
            .iter()
            .filter(|l| l.status == "committed" && l.feed == feed && l.load_seq > since)
            .map(|l| l.load_id.as_str())
            .collect();
        let name = format!("{}{STATE_SUFFIX}", t.name);
        let readable = match &state {
            Some(s) => {
                let path = s.path.to_string_lossy();
                match private
                    .register_parquet(name.as_str(), path.as_ref(), ParquetReadOptions::default())
                    .await
                {
                    Ok(()) => true,
                    // A cache that cannot be read (deleted a moment ago, damaged) is passed by.
                    Err(e) => {
                        tracing::warn!(path = %s.path.display(), error = %e, "current state not read");
                        false
                    }
                }
            }
            None => false,
        };
        let sql = if readable {
            current_from_state_sql(t, &name, &newer)
        } else {
            current_sql(t)
        };
        views.push((format!("{}{CURRENT_SUFFIX}", t.name), sql));
    }
    for (name, sql) in views {
        let sql = match access(&name, &divisions) {
            Access::Full => sql,
            Access::Hidden => continue,
            Access::Rows(predicate) => format!("SELECT * FROM ({sql}) scoped_ WHERE {predicate}"),
        };
        let plan = private.sql(&sql).await?.into_optimized_plan()?;
        ctx.register_table(name.as_str(), Arc::new(ViewTable::new(plan, Some(sql))))?;
    }

    for def in tables::DIVISION_TABLES {
        // Without field metadata: DataFusion 55 rejects a UNION of columns whose metadata
        // differ ("Physical input schema should be the same…"); the docs live in plsw-schemas.
        let batch = without_metadata(divisions.batch(def));
        let mem = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
        ctx.register_table(def.name, Arc::new(mem))?;
    }
    ctx.sql(&format!(
        "CREATE VIEW divisions AS
         SELECT '{PROVINCE_CODE}' AS code, '河南省' AS name, 'province' AS level, CAST(NULL AS VARCHAR) AS parent_code, 'province' AS kind
         UNION ALL SELECT code, name, 'city', '{PROVINCE_CODE}', kind FROM cities
         UNION ALL SELECT code, name, 'county', city_code, kind FROM counties
         UNION ALL SELECT code, name, 'township', county_code, kind FROM townships
         UNION ALL SELECT code, name, 'village', township_code, kind FROM villages"
    ))
    .await?;
    Ok(ViewPlan { divisions, max_seq })
}

fn column_list(t: &Table, alias: &str) -> String {
    t.stored_columns()
        .iter()
        .map(|c| format!("{alias}.{}", c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every accepted row of committed loads, with lineage.
fn history_sql(t: &Table) -> String {
    format!(
        "SELECT {cols} FROM {name} r WHERE r.load_id IN (SELECT load_id FROM ({COMMITTED}))",
        cols = column_list(t, "r"),
        name = t.name
    )
}

/// The current state per key: the row of the latest committed load, the later record within a
/// file. For a snapshot, the current state is per `as_of`: the rows of the last load of that date.
fn current_sql(t: &Table) -> String {
    ranked_sql(t, COMMITTED, "")
}

/// [`current_sql`] over the loads of `loads` (a query of `load_id, load_seq`), with `restrict`
/// (empty, or ` WHERE …` over the raw rows `r`).
///
/// The newest row per key is found by grouping and joining back, not by a window: a window
/// sorts the whole history by key (6.8 GiB and two minutes for a first transform at ten
/// province-years), a hash aggregate does not. Rows are ordered by `load_seq`, then `record`,
/// as one number (`record` is below 2^32, and unique within a load: a file's record position or
/// a pull's item number, whose groups hold one row per key), so the newest row is unique.
fn ranked_sql(t: &Table, loads: &str, restrict: &str) -> String {
    let cols = column_list(t, "r");
    let mut partition: Vec<&str> = Vec::new();
    if t.kind == TableKind::Snapshot {
        partition.push("as_of");
    }
    partition.extend(t.key.iter().copied());
    debug_assert!(!partition.is_empty(), "{} has no key", t.name);
    let extra_from = match t.kind {
        TableKind::Snapshot => format!(
            " JOIN (SELECT as_of AS snap_as_of, max(load_seq) AS snap_seq FROM loads
                     WHERE status = 'committed' AND feed = '{name}' GROUP BY as_of) latest
               ON r.as_of = latest.snap_as_of AND l.load_seq = latest.snap_seq",
            name = t.name
        ),
        _ => String::new(),
    };
    let rows = format!(
        "SELECT {cols}, l.load_seq * 4294967296 + r.record AS o_
         FROM {name} r JOIN ({loads}) l ON r.load_id = l.load_id{extra_from}{restrict}",
        name = t.name
    );
    let group = partition.join(", ");
    let best = partition
        .iter()
        .map(|k| format!("{k} AS b_{k}"))
        .collect::<Vec<_>>()
        .join(", ");
    // Key columns are required (an empty one quarantines its row), so `=` matches every row.
    let on = partition
        .iter()
        .map(|k| format!("x.{k} = b.b_{k}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let outer = column_list(t, "x");
    format!(
        "SELECT {outer} FROM ({rows}) x JOIN
         (SELECT {best}, max(o_) AS b_o_ FROM ({rows}) y GROUP BY {group}) b
         ON {on} AND x.o_ = b.b_o_"
    )
}

/// The current state per key from a state on disk (registered as `state`) and the committed
/// loads after it (`newer`, listed so that the scans skip every other load's files): the state's
/// rows whose key (for a snapshot: whose date) none of those loads brings, and the newest of
/// theirs as in [`current_sql`].
fn current_from_state_sql(t: &Table, state: &str, newer: &[&str]) -> String {
    let outer = column_list(t, "s");
    if newer.is_empty() {
        return format!("SELECT {outer} FROM {state} s");
    }
    let ids = newer
        .iter()
        .map(|id| sql_text(id))
        .collect::<Vec<_>>()
        .join(", ");
    let name = t.name;
    // The newest rows among the newer loads only: the same ranking, over their rows.
    let ranked = ranked_sql(
        t,
        &format!("{COMMITTED} AND load_id IN ({ids})"),
        &format!(" WHERE r.load_id IN ({ids})"),
    );
    let kept = match t.kind {
        TableKind::Snapshot => format!(
            "SELECT {outer} FROM {state} s WHERE s.as_of NOT IN
             (SELECT as_of FROM loads WHERE load_id IN ({ids}) AND as_of IS NOT NULL)"
        ),
        _ => {
            let key = t.key.join(", ");
            let on = t
                .key
                .iter()
                .map(|k| format!("s.{k} = n.{k}"))
                .collect::<Vec<_>>()
                .join(" AND ");
            format!(
                "SELECT {outer} FROM {state} s LEFT ANTI JOIN
                 (SELECT DISTINCT {key} FROM {name} WHERE load_id IN ({ids})) n ON {on}"
            )
        }
    };
    format!("{ranked} UNION ALL {kept}")
}

/// A SQL string literal: `s` in single quotes, its own quotes doubled.
pub fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The batch with a schema whose fields carry no metadata.
pub fn without_metadata(batch: RecordBatch) -> RecordBatch {
    let fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_metadata(Default::default()))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    RecordBatch::try_new(schema, batch.columns().to_vec()).expect("same columns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_in_sql_is_quoted_with_its_quotes_doubled() {
        assert_eq!(sql_text("HL20251231000001"), "'HL20251231000001'");
        assert_eq!(sql_text("豫0102'x"), "'豫0102''x'");
    }
}
