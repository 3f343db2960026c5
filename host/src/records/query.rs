//! List queries: filters, sorting, cursor pagination and quick search.
//!
//! The query string is parsed once, at the edge, into a typed [`ListQuery`] checked
//! against the object's metadata; SQL is then generated from it with every value
//! bound as a parameter. Field names reach SQL only after they matched metadata.

use base64::Engine;
use serde_json::{Map, Value};

use super::RecordError;
use super::metadata::{Field, FieldType, ObjectType};
use crate::access::ReadScope;
use crate::db::{Dialect, format_time};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;
const MAX_IN_VALUES: usize = 100;

/// A value bound to a query parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// What a filter or sort key reads: a column of the envelope or a field.
#[derive(Clone, Debug)]
pub enum Column<'a> {
    Id,
    /// Ordered as `id`: ids are UUIDv7, so id order is creation order.
    CreatedAt,
    UpdatedAt,
    Owner,
    Department,
    Version,
    Field(&'a Field),
}

impl<'a> Column<'a> {
    pub fn parse(object: &'a ObjectType, name: &str) -> Result<Self, RecordError> {
        Ok(match name {
            "id" => Column::Id,
            "created_at" => Column::CreatedAt,
            "updated_at" => Column::UpdatedAt,
            "owner" => Column::Owner,
            "department" => Column::Department,
            "version" => Column::Version,
            _ => Column::Field(object.field(name).ok_or_else(|| {
                RecordError::BadQuery(format!("{} has no field named '{name}'", object.name))
            })?),
        })
    }

    fn sql(&self) -> String {
        match self {
            Column::Id => "id".into(),
            Column::CreatedAt => "created_at".into(),
            Column::UpdatedAt => "updated_at".into(),
            Column::Owner => "owner_id".into(),
            Column::Department => "department_id".into(),
            Column::Version => "version".into(),
            Column::Field(f) => f.value_sql(),
        }
    }

    /// Parses a value from the query string into the type this column compares as.
    fn parse_value(&self, raw: &str) -> Result<Bind, String> {
        let kind = match self {
            Column::Id | Column::Owner | Column::Department => return Ok(Bind::Text(raw.into())),
            Column::Version => FieldType::Integer,
            Column::CreatedAt | Column::UpdatedAt => {
                let t = parse_instant(raw)?;
                return Ok(Bind::Text(format_time(t)));
            }
            Column::Field(f) => f.kind,
        };
        match kind {
            FieldType::Integer => raw
                .parse()
                .map(Bind::Int)
                .map_err(|_| "a whole number".to_string()),
            FieldType::Decimal | FieldType::Currency => raw
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(Bind::Float)
                .ok_or_else(|| "a number".to_string()),
            FieldType::Boolean => match raw {
                "true" => Ok(Bind::Bool(true)),
                "false" => Ok(Bind::Bool(false)),
                _ => Err("true or false".into()),
            },
            FieldType::Date => chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .map(|d| Bind::Text(d.format("%Y-%m-%d").to_string()))
                .map_err(|_| "a date as YYYY-MM-DD".to_string()),
            FieldType::Datetime => {
                let t = parse_instant(raw)?;
                Ok(Bind::Text(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()))
            }
            _ => Ok(Bind::Text(raw.into())),
        }
    }

    pub fn kind(&self) -> Option<FieldType> {
        match self {
            Column::Field(f) => Some(f.kind),
            _ => None,
        }
    }

    /// The cursor value of this column for a record.
    fn value_of(&self, record: &super::Record) -> Value {
        match self {
            Column::Id | Column::CreatedAt => Value::String(record.id.clone()),
            Column::UpdatedAt => Value::String(record.updated_at.clone()),
            Column::Owner => record
                .owner
                .clone()
                .map(Value::String)
                .unwrap_or(Value::Null),
            Column::Department => record
                .department
                .clone()
                .map(Value::String)
                .unwrap_or(Value::Null),
            Column::Version => Value::from(record.version),
            Column::Field(f) => record.fields.get(&f.name).cloned().unwrap_or(Value::Null),
        }
    }

    /// Turns a cursor value back into a bind value.
    fn cursor_bind(&self, v: &Value) -> Option<Bind> {
        match v {
            Value::Null => None,
            Value::String(s) => Some(Bind::Text(s.clone())),
            Value::Bool(b) => Some(Bind::Bool(*b)),
            Value::Number(n)
                if matches!(self.kind(), Some(FieldType::Decimal | FieldType::Currency)) =>
            {
                n.as_f64().map(Bind::Float)
            }
            Value::Number(n) => n
                .as_i64()
                .map(Bind::Int)
                .or_else(|| n.as_f64().map(Bind::Float)),
            _ => None,
        }
    }
}

/// A date (midnight UTC) or an RFC 3339 instant.
fn parse_instant(raw: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| "a date (YYYY-MM-DD) or an RFC 3339 date and time".to_string())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
    Contains,
    In,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "contains" => Op::Contains,
            "in" => Op::In,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct Filter<'a> {
    pub column: Column<'a>,
    pub op: Op,
    pub values: Vec<Bind>,
}

#[derive(Clone, Debug)]
pub struct Sort<'a> {
    pub column: Column<'a>,
    pub descending: bool,
}

#[derive(Clone, Debug)]
pub struct ListQuery<'a> {
    pub filters: Vec<Filter<'a>>,
    pub sort: Sort<'a>,
    pub limit: i64,
    /// The sort value and id of the last record of the previous page.
    pub after: Option<(Option<Bind>, String)>,
    pub search: Option<String>,
    sort_text: String,
}

impl<'a> ListQuery<'a> {
    /// Parses `filter[f]=v`, `filter[f][op]=v`, `sort`, `limit`, `cursor` and `q`.
    pub fn parse(object: &'a ObjectType, query: &str) -> Result<Self, RecordError> {
        let bad = |m: String| RecordError::BadQuery(m);
        let mut filters = Vec::new();
        let mut sort_text = "-created_at".to_string();
        let mut limit = DEFAULT_LIMIT;
        let mut cursor = None;
        let mut search = None;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "sort" => sort_text = value.into_owned(),
                "limit" => {
                    limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            bad(format!(
                                "limit must be a whole number from 1 to {MAX_LIMIT}"
                            ))
                        })?
                }
                "cursor" => cursor = Some(value.into_owned()),
                "q" => search = Some(value.into_owned()).filter(|s| !s.trim().is_empty()),
                k if k.starts_with("filter[") => filters.push(parse_filter(object, k, &value)?),
                k => {
                    return Err(bad(format!(
                        "unknown query parameter '{k}'; use filter[field], sort, limit, cursor or q"
                    )));
                }
            }
        }
        let (name, descending) = match sort_text.strip_prefix('-') {
            Some(name) => (name, true),
            None => (sort_text.as_str(), false),
        };
        let column = Column::parse(object, name)?;
        if column.kind().is_some_and(|k| !k.ordered()) {
            return Err(bad(format!(
                "cannot sort by {name}: its values have no order"
            )));
        }
        let sort = Sort { column, descending };
        let after = match cursor {
            Some(c) => Some(decode_cursor(&c, &sort_text, &sort.column)?),
            None => None,
        };
        if let Some(q) = &search {
            if q.chars().count() > 200 {
                return Err(bad("q is at most 200 characters".into()));
            }
            if !object.fields.iter().any(|f| f.searchable) {
                return Err(bad(format!(
                    "{} has no searchable fields; mark a field searchable to use q",
                    object.name
                )));
            }
        }
        Ok(ListQuery {
            filters,
            sort,
            limit,
            after,
            search,
            sort_text,
        })
    }

    /// SQL selecting one page (one row more than the limit, to know whether more follow).
    pub fn to_sql(
        &self,
        object: &ObjectType,
        dialect: Dialect,
        select: &str,
        scope: &ReadScope,
    ) -> (String, Vec<Bind>) {
        let mut b = SqlBuilder::default();
        // Binds of the read scope first: the other conditions repeat in every branch
        // and reuse their numbered placeholders.
        let branches = scope.branches(&object.name, &mut b);
        let rest = self.conditions(object, dialect, &mut b);
        let (expr, is_id) = match self.sort.column {
            Column::Id | Column::CreatedAt => ("id".to_string(), true),
            ref c => (c.sql(), false),
        };
        let (cmp, dir) = if self.sort.descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let limit = self.limit + 1;
        // The page is read in parts, each an index walk in its own order: by id; or
        // the records with a value in the field index's order (value, id), then
        // those without one in id order. One `ORDER BY value NULLS LAST` would make
        // SQLite sort every matching row (its indexes keep NULLs first).
        let mut parts: Vec<(String, String)> = Vec::new();
        if is_id {
            let keyset = match &self.after {
                Some((_, id)) => format!(" AND id {cmp} {}", b.bind(Bind::Text(id.clone()))),
                None => String::new(),
            };
            parts.push((keyset, format!(" ORDER BY id {dir} LIMIT {limit}")));
        } else {
            // A cursor without a value is already among the records without one.
            if !matches!(self.after, Some((None, _))) {
                let mut with_value = format!(" AND {expr} IS NOT NULL");
                if let Some((Some(v), id)) = &self.after {
                    let id_param = b.bind(Bind::Text(id.clone()));
                    let v = b.bind(v.clone());
                    with_value.push_str(&format!(
                        " AND ({expr} {cmp} {v} OR ({expr} = {v} AND id {cmp} {id_param}))"
                    ));
                }
                parts.push((
                    with_value,
                    format!(" ORDER BY {expr} {dir}, id {dir} LIMIT {limit}"),
                ));
            }
            let mut without = format!(" AND {expr} IS NULL");
            if let Some((None, id)) = &self.after {
                without.push_str(&format!(" AND id {cmp} {}", b.bind(Bind::Text(id.clone()))));
            }
            parts.push((without, format!(" ORDER BY id {dir} LIMIT {limit}")));
        }
        let order = if is_id {
            format!(" ORDER BY id {dir} LIMIT {limit}")
        } else {
            format!(" ORDER BY {expr} {dir} NULLS LAST, id {dir} LIMIT {limit}")
        };
        // The object name is a checked identifier; as a literal it lets the planners
        // use the object's partial field indexes.
        let from = format!("FROM records WHERE object = '{}'", object.name);
        let scopes: Vec<String> = match branches {
            None => vec![String::new()],
            Some(branches) => branches.iter().map(|b| format!(" AND {b}")).collect(),
        };
        let sql = match (&parts[..], &scopes[..]) {
            ([(part, part_order)], [scope]) => {
                format!("SELECT {select} {from}{scope}{rest}{part}{part_order}")
            }
            // The first page of each part in each read scope's branch, then the first
            // page of their union: a few short index walks instead of a filtered scan
            // and a sort.
            _ => {
                let (from, rest) = (&from, &rest);
                let pages: Vec<String> = parts
                    .iter()
                    .flat_map(|(part, part_order)| {
                        scopes.iter().map(move |scope| {
                            format!("SELECT id {from}{scope}{rest}{part}{part_order}")
                        })
                    })
                    .enumerate()
                    .map(|(i, page)| format!("SELECT id FROM ({page}) AS p{i}"))
                    .collect();
                format!(
                    "SELECT {select} FROM records WHERE id IN ({}){order}",
                    pages.join(" UNION ALL ")
                )
            }
        };
        (sql, b.binds)
    }

    /// The filters and quick search as ` AND ...` conditions (empty when none).
    fn conditions(&self, object: &ObjectType, dialect: Dialect, b: &mut SqlBuilder) -> String {
        let mut rest = String::new();
        for f in &self.filters {
            rest.push_str(" AND ");
            rest.push_str(&filter_sql(f, dialect, b));
        }
        if let Some(q) = &self.search {
            let pattern = b.bind(Bind::Text(format!("%{}%", escape_like(&q.to_lowercase()))));
            let ors: Vec<String> = object
                .fields
                .iter()
                .filter(|f| f.searchable)
                .map(|f| format!("lower(data->>'{}') LIKE {pattern} ESCAPE '\\'", f.name))
                .collect();
            rest.push_str(&format!(" AND ({})", ors.join(" OR ")));
        }
        rest
    }

    /// The cursor that continues after `last`.
    pub fn cursor_after(&self, last: &super::Record) -> String {
        let payload = serde_json::json!({"s": self.sort_text, "v": self.sort.column.value_of(last), "id": last.id});
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string())
    }
}

fn parse_filter<'a>(
    object: &'a ObjectType,
    key: &str,
    raw: &str,
) -> Result<Filter<'a>, RecordError> {
    let bad = |m: String| RecordError::BadQuery(m);
    // filter[field] or filter[field][op]
    let inner = key.strip_prefix("filter[").unwrap_or_default();
    let (name, rest) = inner
        .split_once(']')
        .ok_or_else(|| bad(format!("malformed filter '{key}'")))?;
    let op = match rest {
        "" => Op::Eq,
        r => r
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .and_then(Op::parse)
            .ok_or_else(|| bad(format!("unknown filter operator in '{key}'; use eq, ne, lt, lte, gt, gte, contains or in")))?,
    };
    let column = Column::parse(object, name)?;
    let kind = column.kind();
    let ordered = kind.is_none_or(|k| k.ordered());
    let allowed = match op {
        Op::Lt | Op::Lte | Op::Gt | Op::Gte => ordered,
        Op::Contains => matches!(
            kind,
            Some(
                FieldType::Text
                    | FieldType::LongText
                    | FieldType::Email
                    | FieldType::Phone
                    | FieldType::Url
                    | FieldType::MultiPicklist
            )
        ),
        Op::Eq | Op::Ne | Op::In => kind != Some(FieldType::MultiPicklist),
    };
    if !allowed {
        return Err(bad(format!(
            "the operator in '{key}' does not apply to {name}"
        )));
    }
    let raws: Vec<&str> = if op == Op::In {
        raw.split(',').collect()
    } else {
        vec![raw]
    };
    if raws.len() > MAX_IN_VALUES {
        return Err(bad(format!("'in' takes at most {MAX_IN_VALUES} values")));
    }
    let values = if op == Op::Contains {
        vec![Bind::Text(raw.to_string())]
    } else {
        raws.iter()
            .map(|r| {
                column
                    .parse_value(r)
                    .map_err(|what| bad(format!("{key} must be {what}, not '{r}'")))
            })
            .collect::<Result<_, _>>()?
    };
    Ok(Filter { column, op, values })
}

fn filter_sql(f: &Filter<'_>, dialect: Dialect, b: &mut SqlBuilder) -> String {
    let expr = f.column.sql();
    let first = f.values[0].clone();
    match f.op {
        Op::Contains if f.column.kind() == Some(FieldType::MultiPicklist) => {
            let Column::Field(field) = f.column else {
                unreachable!("multi picklists are fields")
            };
            let n = b.next_index();
            b.bind(first);
            dialect.json_array_contains(&field.name, n)
        }
        Op::Contains => {
            let Bind::Text(text) = first else {
                unreachable!("contains binds text")
            };
            let p = b.bind(Bind::Text(format!(
                "%{}%",
                escape_like(&text.to_lowercase())
            )));
            format!("lower({expr}) LIKE {p} ESCAPE '\\'")
        }
        Op::In => {
            let params: Vec<String> = f.values.iter().map(|v| b.bind(v.clone())).collect();
            format!("{expr} IN ({})", params.join(", "))
        }
        // "not equal" includes records that have no value at all.
        Op::Ne => {
            let p = b.bind(first);
            format!("({expr} <> {p} OR {expr} IS NULL)")
        }
        op => {
            let sym = match op {
                Op::Eq => "=",
                Op::Lt => "<",
                Op::Lte => "<=",
                Op::Gt => ">",
                _ => ">=",
            };
            let p = b.bind(first);
            format!("{expr} {sym} {p}")
        }
    }
}

fn decode_cursor(
    cursor: &str,
    sort_text: &str,
    column: &Column<'_>,
) -> Result<(Option<Bind>, String), RecordError> {
    let bad = || RecordError::BadQuery("the cursor is not valid; start again without it".into());
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let v: Map<String, Value> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if v.get("s").and_then(Value::as_str) != Some(sort_text) {
        return Err(RecordError::BadQuery(
            "the cursor belongs to another sort order; start again without it".into(),
        ));
    }
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(bad)?
        .to_string();
    let value = v.get("v").ok_or_else(bad)?;
    let bind = column.cursor_bind(value);
    if bind.is_none() && !value.is_null() {
        return Err(bad());
    }
    Ok((bind, id))
}

/// `s` as literal text inside a `LIKE` pattern with `ESCAPE '\\'`.
pub(crate) fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Numbers bind parameters as SQL is generated.
#[derive(Default)]
pub struct SqlBuilder {
    pub binds: Vec<Bind>,
}

impl SqlBuilder {
    fn next_index(&self) -> usize {
        self.binds.len() + 1
    }
    /// Adds a bind value and returns its placeholder.
    pub fn bind(&mut self, v: Bind) -> String {
        self.binds.push(v);
        format!("${}", self.binds.len())
    }
}

/// Attaches bind values to a query in order.
pub fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for b in binds {
        query = match b {
            Bind::Text(s) => query.bind(s),
            Bind::Int(i) => query.bind(i),
            Bind::Float(f) => query.bind(f),
            Bind::Bool(v) => query.bind(v),
        };
    }
    query
}

/// Groups an aggregate answers at most.
pub const MAX_GROUPS: usize = 1_000;

/// Counts, sums, averages, minimums and maximums over the records a list's filters
/// and search select, by up to two group keys:
/// `group_by=stage,owner&sum=amount&avg=amount&filter[...]=...`.
pub struct Aggregate<'a> {
    pub list: ListQuery<'a>,
    pub group_by: Vec<GroupKey<'a>>,
    /// Each over a numeric field, in the order asked.
    pub measures: Vec<(Measure, &'a Field)>,
}

/// What is computed over a numeric field of each group's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// Records without a value add 0.
    Sum,
    /// Over the records that have a value; `null` when none has.
    Avg,
    Min,
    Max,
}

impl Measure {
    pub const ALL: [Measure; 4] = [Measure::Sum, Measure::Avg, Measure::Min, Measure::Max];

    /// Its query parameter and the key of its answers.
    pub fn key(self) -> &'static str {
        match self {
            Measure::Sum => "sum",
            Measure::Avg => "avg",
            Measure::Min => "min",
            Measure::Max => "max",
        }
    }

    pub fn parse(key: &str) -> Option<Measure> {
        Measure::ALL.into_iter().find(|m| m.key() == key)
    }

    /// As a double on both databases (PostgreSQL sums and averages whole numbers as
    /// `numeric`, which the Any driver cannot read).
    fn sql(self, field: &Field) -> String {
        let value = field.value_sql();
        match self {
            Measure::Sum => format!("CAST(SUM({value}) AS DOUBLE PRECISION)"),
            Measure::Avg => format!("CAST(AVG({value}) AS DOUBLE PRECISION)"),
            Measure::Min => format!("CAST(MIN({value}) AS DOUBLE PRECISION)"),
            Measure::Max => format!("CAST(MAX({value}) AS DOUBLE PRECISION)"),
        }
    }
}

/// Most measures one aggregate computes.
pub const MAX_MEASURES: usize = 8;

/// One `group_by` key: a column, or a date or instant cut to its day, month or year
/// (`created_at:month`, `close_date:year`).
pub struct GroupKey<'a> {
    /// As the query names it, and so the answer's key.
    pub name: String,
    pub column: Column<'a>,
    pub period: Option<Period>,
}

/// What a date or an instant is grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Day,
    Month,
    Year,
}

impl Period {
    fn parse(unit: &str) -> Option<Period> {
        match unit {
            "day" => Some(Period::Day),
            "month" => Some(Period::Month),
            "year" => Some(Period::Year),
            _ => None,
        }
    }

    /// Characters of `YYYY-MM-DD...` that name the period: dates and instants are
    /// stored as ISO text on both databases, so a prefix is the period.
    fn chars(self) -> u8 {
        match self {
            Period::Day => 10,
            Period::Month => 7,
            Period::Year => 4,
        }
    }
}

impl<'a> GroupKey<'a> {
    fn parse(object: &'a ObjectType, name: &str) -> Result<Self, RecordError> {
        let bad = |m: String| RecordError::BadQuery(m);
        let (column_name, period) = match name.split_once(':') {
            Some((column, unit)) => {
                let period = Period::parse(unit).ok_or_else(|| {
                    bad(format!(
                        "{name}: a date is grouped by :day, :month or :year"
                    ))
                })?;
                (column, Some(period))
            }
            None => (name, None),
        };
        let column = Column::parse(object, column_name)?;
        let dated = match &column {
            Column::CreatedAt | Column::UpdatedAt => true,
            Column::Field(f) => matches!(f.kind, FieldType::Date | FieldType::Datetime),
            _ => false,
        };
        let groupable = match (&column, period) {
            (_, Some(_)) => dated,
            (Column::Id | Column::CreatedAt | Column::UpdatedAt, None) => false,
            (Column::Field(f), None) => f.kind.indexable(),
            (_, None) => true,
        };
        if !groupable {
            return Err(bad(if period.is_some() {
                format!("cannot group by {name}: only dates and instants have periods")
            } else if dated {
                format!("cannot group by {name}: group it by a period, as {name}:month")
            } else {
                format!("cannot group by {name}")
            }));
        }
        Ok(GroupKey {
            name: name.to_string(),
            column,
            period,
        })
    }

    fn sql(&self) -> String {
        match self.period {
            Some(p) => format!("substr({}, 1, {})", self.column.sql(), p.chars()),
            None => self.column.sql(),
        }
    }
}

impl<'a> Aggregate<'a> {
    pub fn parse(object: &'a ObjectType, query: &str) -> Result<Self, RecordError> {
        let bad = |m: String| RecordError::BadQuery(m);
        let mut group_by = Vec::new();
        let mut measures = Vec::new();
        let mut rest = form_urlencoded::Serializer::new(String::new());
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "group_by" => {
                    for name in value.split(',').filter(|n| !n.is_empty()) {
                        group_by.push(GroupKey::parse(object, name)?);
                    }
                }
                "sum" | "avg" | "min" | "max" => {
                    let measure = Measure::parse(&key).expect("matched above");
                    for name in value.split(',').filter(|n| !n.is_empty()) {
                        match object.field(name) {
                            Some(f) if f.kind.is_numeric() => measures.push((measure, f)),
                            Some(_) => {
                                return Err(bad(format!(
                                    "cannot {key} {name}: it is not a number"
                                )));
                            }
                            None => {
                                return Err(bad(format!(
                                    "{} has no field named '{name}'",
                                    object.name
                                )));
                            }
                        }
                    }
                }
                "sort" | "limit" | "cursor" => {
                    return Err(bad(format!(
                        "an aggregate takes group_by, sum, avg, min, max, filter[field] and q, not {key}"
                    )));
                }
                _ => {
                    rest.append_pair(&key, &value);
                }
            }
        }
        if group_by.len() > 2 {
            return Err(bad("group_by takes at most two keys".into()));
        }
        if measures.len() > MAX_MEASURES {
            return Err(bad(format!(
                "sum, avg, min and max take at most {MAX_MEASURES} fields in all"
            )));
        }
        Ok(Aggregate {
            list: ListQuery::parse(object, &rest.finish())?,
            group_by,
            measures,
        })
    }

    /// `SELECT g0, g1, COUNT(*), SUM(m0), AVG(m1), ...` over the records in `scope`, the
    /// largest groups first (ties by key), one more than [`MAX_GROUPS`] (to know whether more
    /// follow).
    pub fn to_sql(
        &self,
        object: &ObjectType,
        dialect: Dialect,
        scope: &ReadScope,
    ) -> (String, Vec<Bind>) {
        let mut b = SqlBuilder::default();
        let readable = scope
            .sql(&object.name, &mut b)
            .map(|c| format!(" AND {c}"))
            .unwrap_or_default();
        let rest = self.list.conditions(object, dialect, &mut b);
        let groups: Vec<String> = self
            .group_by
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{} AS g{i}", k.sql()))
            .collect();
        let mut select = groups.clone();
        select.push("COUNT(*) AS n".into());
        select.extend(
            self.measures
                .iter()
                .enumerate()
                .map(|(i, (m, f))| format!("{} AS m{i}", m.sql(f))),
        );
        let keys: Vec<String> = (0..groups.len()).map(|i| format!("g{i}")).collect();
        let group = if keys.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {}", keys.join(", "))
        };
        // Ties in size by key, groups without a value last (on both databases;
        // PostgreSQL takes output names only bare in ORDER BY, so the expressions).
        let ties: String = self
            .group_by
            .iter()
            .map(|k| format!(", {0} IS NULL, {0}", k.sql()))
            .collect();
        // The object name is a checked identifier (see `ListQuery::to_sql`).
        let sql = format!(
            "SELECT {} FROM records WHERE object = '{}'{readable}{rest}{group} ORDER BY n DESC{ties} LIMIT {}",
            select.join(", "),
            object.name,
            MAX_GROUPS + 1
        );
        (sql, b.binds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deals() -> ObjectType {
        ObjectType {
            name: "deals".into(),
            label: "Deal".into(),
            label_plural: "Deals".into(),
            description: String::new(),
            standard: true,
            fields: serde_json::from_value(json!([
                {"name": "name", "type": "text", "searchable": true},
                {"name": "amount", "type": "currency"},
                {"name": "tags", "type": "multi_picklist", "values": ["a"]},
                {"name": "won", "type": "boolean"}
            ]))
            .unwrap(),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn filters_bind_typed_values_and_never_inline_them() {
        let o = deals();
        let q = ListQuery::parse(
            &o,
            "filter[amount][gte]=100.5&filter[name]=x'%20OR%201=1&sort=amount",
        )
        .unwrap();
        let (sql, binds) = q.to_sql(&o, Dialect::Sqlite, "id", &ReadScope::All);
        assert!(!sql.contains("OR 1=1"), "{sql}");
        assert_eq!(
            binds,
            vec![Bind::Float(100.5), Bind::Text("x' OR 1=1".into())]
        );
        assert!(sql.contains("WHERE object = 'deals' AND "), "{sql}");
        assert!(sql.ends_with("ORDER BY CAST((data->>'amount') AS DOUBLE PRECISION) ASC NULLS LAST, id ASC LIMIT 51"), "{sql}");
    }

    #[test]
    fn a_sort_by_a_field_walks_its_index_then_the_records_without_a_value() {
        let o = deals();
        let amount = "CAST((data->>'amount') AS DOUBLE PRECISION)";
        let q = ListQuery::parse(&o, "sort=-amount&limit=10").unwrap();
        let (sql, _) = q.to_sql(&o, Dialect::Sqlite, "id", &ReadScope::All);
        assert!(
            sql.contains(&format!(
                "{amount} IS NOT NULL ORDER BY {amount} DESC, id DESC LIMIT 11"
            )),
            "{sql}"
        );
        assert!(
            sql.contains(&format!("{amount} IS NULL ORDER BY id DESC LIMIT 11")),
            "{sql}"
        );
        assert!(
            !sql.contains("NULLS LAST, id DESC LIMIT 11) AS"),
            "no part sorts every row: {sql}"
        );
        // Past the last record with a value, only those without one are read.
        let last = crate::records::Record {
            id: "0196".into(),
            object: "deals".into(),
            version: 1,
            created_at: String::new(),
            updated_at: String::new(),
            owner: None,
            department: None,
            fields: Map::new(),
        };
        let cursor = q.cursor_after(&last);
        let next = ListQuery::parse(&o, &format!("sort=-amount&limit=10&cursor={cursor}")).unwrap();
        let (sql, binds) = next.to_sql(&o, Dialect::Sqlite, "id", &ReadScope::All);
        assert!(!sql.contains("IS NOT NULL"), "{sql}");
        assert!(
            sql.contains(&format!("{amount} IS NULL AND id < $1 ORDER BY id DESC")),
            "{sql}"
        );
        assert_eq!(binds, vec![Bind::Text("0196".into())]);
    }

    #[test]
    fn bad_queries_say_what_is_wrong() {
        let o = deals();
        let msg = |q: &str| match ListQuery::parse(&o, q) {
            Err(RecordError::BadQuery(m)) => m,
            other => panic!("{q}: {other:?}"),
        };
        assert!(msg("filter[colour]=red").contains("no field named 'colour'"));
        assert!(msg("filter[amount]=lots").contains("must be a number"));
        assert!(msg("filter[name][like]=x").contains("unknown filter operator"));
        assert!(msg("filter[won][gt]=true").contains("does not apply"));
        assert!(msg("limit=500").contains("from 1 to 200"));
        assert!(msg("sort=tags").contains("no order"));
        assert!(msg("page=2").contains("unknown query parameter"));
        assert!(msg("cursor=garbage").contains("cursor is not valid"));
    }

    #[test]
    fn a_cursor_only_continues_its_own_sort() {
        let o = deals();
        let q = ListQuery::parse(&o, "sort=-amount").unwrap();
        let record = super::super::Record {
            id: "0190".into(),
            object: "deals".into(),
            version: 1,
            created_at: String::new(),
            updated_at: String::new(),
            owner: None,
            department: None,
            fields: json!({"amount": 10.0}).as_object().unwrap().clone(),
        };
        let cursor = q.cursor_after(&record);
        let next = ListQuery::parse(&o, &format!("sort=-amount&cursor={cursor}")).unwrap();
        assert_eq!(next.after, Some((Some(Bind::Float(10.0)), "0190".into())));
        assert!(ListQuery::parse(&o, &format!("sort=amount&cursor={cursor}")).is_err());
    }

    #[test]
    fn search_escapes_like_wildcards() {
        let o = deals();
        let q = ListQuery::parse(&o, "q=50%25_off").unwrap();
        let (_, binds) = q.to_sql(&o, Dialect::Postgres, "id", &ReadScope::All);
        assert_eq!(binds[0], Bind::Text("%50\\%\\_off%".into()));
    }
}
