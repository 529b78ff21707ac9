//! API tokens of the member units (access.md, Identities): 256 random bits shown once, stored
//! only as a SHA-256 hash in the Delta table `tokens`, which no caller's session registers.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, AsArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use plsw_schemas::tables::TOKENS;
use plsw_store::{Divisions, Warehouse, PROVINCE_CODE};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The member units (sample data until the joint conference's list is loaded).
const MEMBER_UNITS_CSV: &str = include_str!("../../seeds/member_units.csv");

/// A token's prefix: it tells a leaked string for what it is.
const PREFIX: &str = "plsw_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Analyst,
    Viewer,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "analyst" => Some(Role::Analyst),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Viewer => "viewer",
        }
    }
}

/// What a caller may see: the whole province, or some cities and counties (a city includes its
/// counties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Province,
    Codes(Vec<String>),
}

impl Scope {
    pub fn parse(text: &str) -> Scope {
        let codes: Vec<String> = text
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect();
        // An empty scope sees nothing (fail closed); the province must be named.
        if codes.iter().any(|c| c == "province" || c == PROVINCE_CODE) {
            Scope::Province
        } else {
            Scope::Codes(codes)
        }
    }

    pub fn as_text(&self) -> String {
        match self {
            Scope::Province => "province".into(),
            Scope::Codes(c) => c.join(","),
        }
    }

    pub fn is_province(&self) -> bool {
        matches!(self, Scope::Province)
    }
}

/// One token, as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token_id: String,
    pub unit_id: String,
    pub role: Role,
    pub scope: Scope,
    pub sha256: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// The member units: (unit_id, name).
pub fn member_units() -> Vec<(String, String)> {
    MEMBER_UNITS_CSV
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split(',');
            Some((f.next()?.trim().to_string(), f.next()?.trim().to_string()))
        })
        .collect()
}

/// SHA-256 of a presented token, hex.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Every token record, revoked ones included.
pub async fn all(wh: &Warehouse) -> Result<Vec<TokenRecord>, ApiError> {
    // Only the tokens table: this runs whenever the token cache expires.
    let ctx = wh
        .context_of(&[&TOKENS])
        .await
        .map_err(ApiError::internal)?;
    let batches = ctx
        .sql("SELECT * FROM tokens ORDER BY created_at, token_id")
        .await
        .map_err(ApiError::internal)?
        .collect()
        .await
        .map_err(ApiError::internal)?;
    let mut out = Vec::new();
    for b in &batches {
        let text = |name: &str| -> Result<StringArray, ApiError> {
            let c = b
                .column_by_name(name)
                .ok_or_else(|| ApiError::internal(name))?;
            Ok(cast(c, &DataType::Utf8)
                .map_err(ApiError::internal)?
                .as_string::<i32>()
                .clone())
        };
        let (ids, units, roles, scopes, hashes) = (
            text("token_id")?,
            text("unit_id")?,
            text("role")?,
            text("scope")?,
            text("sha256")?,
        );
        let ts = |name: &str| -> Result<TimestampMicrosecondArray, ApiError> {
            let c = b
                .column_by_name(name)
                .ok_or_else(|| ApiError::internal(name))?;
            Ok(c.as_primitive::<TimestampMicrosecondType>().clone())
        };
        let (created, revoked) = (ts("created_at")?, ts("revoked_at")?);
        for i in 0..b.num_rows() {
            out.push(TokenRecord {
                token_id: ids.value(i).to_string(),
                unit_id: units.value(i).to_string(),
                role: Role::parse(roles.value(i)).ok_or_else(|| ApiError::internal("role"))?,
                scope: Scope::parse(scopes.value(i)),
                sha256: hashes.value(i).to_string(),
                created_at: created.value(i),
                revoked_at: (!revoked.is_null(i)).then(|| revoked.value(i)),
            });
        }
    }
    Ok(out)
}

/// Creates a token for a member unit; returns the token (shown once) and its record.
pub async fn create(
    wh: &Warehouse,
    unit_id: &str,
    role: Role,
    scope: Scope,
) -> Result<(String, TokenRecord), ApiError> {
    if !member_units().iter().any(|(id, _)| id == unit_id) {
        return Err(ApiError::bad_request(
            "unknown_unit",
            format!("{unit_id:?} is not a member unit (seeds/member_units.csv)"),
        ));
    }
    if let Scope::Codes(codes) = &scope {
        let d = Divisions::load(wh).await.map_err(ApiError::internal)?;
        if let Some(bad) = codes.iter().find(|c| !d.is_city(c) && !d.is_county(c)) {
            return Err(ApiError::bad_request(
                "bad_scope",
                format!("{bad:?} is not a city or county of the divisions"),
            ));
        }
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal(e.to_string()))?;
    let token = format!("{PREFIX}{}", hex::encode(bytes));
    let sha256 = hash(&token);
    let record = TokenRecord {
        token_id: sha256[..12].to_string(),
        unit_id: unit_id.to_string(),
        role,
        scope,
        sha256,
        created_at: chrono::Utc::now().timestamp_micros(),
        revoked_at: None,
    };
    wh.append(&TOKENS, vec![batch(std::slice::from_ref(&record))?])
        .await
        .map_err(ApiError::internal)?;
    Ok((token, record))
}

/// Revokes a token by its id; revoking twice keeps the first time.
pub async fn revoke(wh: &Warehouse, token_id: &str) -> Result<TokenRecord, ApiError> {
    let mut all = all(wh).await?;
    let now = chrono::Utc::now().timestamp_micros();
    let Some(rec) = all.iter_mut().find(|r| r.token_id == token_id) else {
        return Err(ApiError::not_found(format!("no token {token_id:?}")));
    };
    rec.revoked_at.get_or_insert(now);
    let revoked = rec.clone();
    wh.overwrite(&TOKENS, vec![batch(&all)?])
        .await
        .map_err(ApiError::internal)?;
    Ok(revoked)
}

fn batch(records: &[TokenRecord]) -> Result<RecordBatch, ApiError> {
    let s = |f: &dyn Fn(&TokenRecord) -> String| {
        Arc::new(StringArray::from_iter_values(records.iter().map(f))) as Arc<dyn Array>
    };
    let ts = |v: Vec<Option<i64>>| {
        Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC")) as Arc<dyn Array>
    };
    debug_assert_eq!(
        TOKENS.schema().field(5).data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    RecordBatch::try_new(
        TOKENS.schema(),
        vec![
            s(&|r| r.token_id.clone()),
            s(&|r| r.unit_id.clone()),
            s(&|r| r.role.as_str().to_string()),
            s(&|r| r.scope.as_text()),
            s(&|r| r.sha256.clone()),
            ts(records.iter().map(|r| Some(r.created_at)).collect()),
            ts(records.iter().map(|r| r.revoked_at).collect()),
        ],
    )
    .map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse() {
        assert_eq!(Scope::parse("province"), Scope::Province);
        assert_eq!(
            Scope::parse(""),
            Scope::Codes(vec![]),
            "an empty scope sees nothing"
        );
        assert_eq!(
            Scope::parse("410100, 419001"),
            Scope::Codes(vec!["410100".into(), "419001".into()])
        );
        assert_eq!(Scope::parse("410100").as_text(), "410100");
    }

    #[test]
    fn the_member_units_are_21() {
        let units = member_units();
        assert_eq!(units.len(), 21);
        assert!(units
            .iter()
            .any(|(id, name)| id == "sfj" && name == "河南省司法厅"));
    }

    #[test]
    fn hashes_are_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
