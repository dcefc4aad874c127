//! Every SQL text the sink sends, written by plain functions from names and types, with no
//! connection in sight. Keeping them apart from the code that talks to the server means each
//! statement can be read, and its exact text asserted, in one place — quoting of odd column
//! names included — and the code that runs them only decides when.
//!
//! Every identifier is quoted ([`quote_ident`]), so Arrow column names arrive exactly as written.

use super::types::{PgType, quote_ident};
use std::fmt::Write as _;

/// The bookkeeping table, beside the target table: which version of each source file it holds.
pub const LOADS_TABLE: &str = "engine_loads";
/// The temporary table each load is copied into before it is merged into the target.
pub const STAGING_TABLE: &str = "engine_staging";

/// The oid of a table (`$1`: its name as SQL), NULL when there is no such table.
pub const TABLE_OID: &str = "SELECT to_regclass($1)::oid";
/// Whether a table exists (`$1`: its name as SQL).
pub const TABLE_EXISTS: &str = "SELECT to_regclass($1) IS NOT NULL";
/// Name, `pg_type.typname` and type as SQL of each live column of the table with oid `$1`.
pub const TABLE_COLUMNS: &str = "SELECT a.attname::text, t.typname::text, \
     format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_type t ON t.oid = \
     a.atttypid WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped";

/// Whether the table (`$1`: its name as SQL) may take a new unit's rows by a plain binary `COPY`
/// instead of the upsert (`$2`: the key's column names): an ordinary table without row security,
/// rules or triggers of its own (a `COPY` would fire them differently from an `INSERT … ON
/// CONFLICT`), with a unique, immediate, whole-column index on exactly the key — the one the
/// upsert's `ON CONFLICT` would use, so a key the table already holds makes the `COPY` fail
/// instead of adding a second row. No row when there is no such table.
pub const TABLE_TAKES_COPY: &str = "SELECT c.relkind = 'r' AND NOT c.relrowsecurity AND NOT \
     c.relhasrules AND NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND NOT \
     g.tgisinternal) AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND \
     i.indisunique AND i.indimmediate AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS \
     NULL AND ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND \
     a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1]) ORDER BY 1) = ARRAY(SELECT \
     DISTINCT k FROM unnest($2::text[]) k ORDER BY 1)) FROM pg_class c WHERE c.oid = \
     to_regclass($1)";

/// `schema.table` as written, and quoted for SQL.
#[derive(Debug, Clone)]
pub struct TableName {
    pub schema: Option<String>,
    pub table: String,
}

impl TableName {
    pub fn parse(text: &str) -> std::result::Result<TableName, String> {
        let parts: Vec<&str> = text.split('.').collect();
        let valid = |part: &&str| !part.trim().is_empty();
        match parts.as_slice() {
            [table] if valid(table) => Ok(TableName {
                schema: None,
                table: table.trim().to_owned(),
            }),
            [schema, table] if valid(schema) && valid(table) => Ok(TableName {
                schema: Some(schema.trim().to_owned()),
                table: table.trim().to_owned(),
            }),
            _ => Err(format!(
                "{text:?} is not a table name; write TABLE or SCHEMA.TABLE"
            )),
        }
    }

    /// The table's name as SQL.
    pub fn sql(&self) -> String {
        self.sibling(&self.table)
    }

    /// Another table in the same schema, as SQL.
    pub fn sibling(&self, table: &str) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(table)),
            None => quote_ident(table),
        }
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.table),
            None => f.write_str(&self.table),
        }
    }
}

/// One column of the records, in batch order, as it travels into the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// How its values are staged.
    pub pg_type: PgType,
    /// The target column's type as SQL, when the staged values must be cast to it.
    pub cast: Option<String>,
}

impl Column {
    /// The staged value of this column in the row aliased `alias`, cast to the target's type.
    fn staged(&self, alias: &str) -> String {
        let name = quote_ident(&self.name);
        match &self.cast {
            Some(target_type) => format!("{alias}.{name}::{target_type}"),
            None => format!("{alias}.{name}"),
        }
    }
}

/// A column to create or add: its name and its type as SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDefinition {
    pub name: String,
    pub sql_type: String,
}

impl ColumnDefinition {
    fn sql(&self) -> String {
        format!("{} {}", quote_ident(&self.name), self.sql_type)
    }
}

fn quoted_list<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|name| quote_ident(name.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The target table with the key as its primary key, and its schema when it has one.
pub fn create_table(table: &TableName, columns: &[ColumnDefinition], key: &[String]) -> String {
    let definitions = columns
        .iter()
        .map(ColumnDefinition::sql)
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = String::new();
    if let Some(schema_name) = &table.schema {
        let _ = write!(
            sql,
            "CREATE SCHEMA IF NOT EXISTS {};",
            quote_ident(schema_name)
        );
    }
    let _ = write!(
        sql,
        "CREATE TABLE IF NOT EXISTS {} ({definitions}, PRIMARY KEY ({}))",
        table.sql(),
        quoted_list(key)
    );
    sql
}

/// The `ADD COLUMN` clauses for columns the table lacks, comma-separated.
pub fn column_additions(columns: &[ColumnDefinition]) -> String {
    columns
        .iter()
        .map(|column| format!("ADD COLUMN IF NOT EXISTS {}", column.sql()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds the columns the table lacks.
pub fn add_columns(table: &TableName, columns: &[ColumnDefinition]) -> String {
    format!("ALTER TABLE {} {}", table.sql(), column_additions(columns))
}

/// The bookkeeping table, beside the target table.
pub fn create_loads_table(table: &TableName) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (pipeline text NOT NULL, target_table text NOT NULL, \
         source_file text NOT NULL, content_hash text NOT NULL, rows bigint NOT NULL, loaded_at \
         timestamptz NOT NULL, PRIMARY KEY (pipeline, target_table, source_file))",
        table.sibling(LOADS_TABLE)
    )
}

/// The staging table, in the types the binary COPY writes; dropped when the transaction ends.
pub fn create_staging(columns: &[Column]) -> String {
    let definitions = columns
        .iter()
        .map(|column| {
            format!(
                "{} {}",
                quote_ident(&column.name),
                column.pg_type.staging_sql()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!("CREATE TEMP TABLE {STAGING_TABLE} ({definitions}) ON COMMIT DROP")
}

/// The binary COPY into the staging table.
pub fn copy_into_staging(columns: &[Column]) -> String {
    let names: Vec<&str> = columns.iter().map(|column| column.name.as_str()).collect();
    format!(
        "COPY {STAGING_TABLE} ({}) FROM STDIN (FORMAT binary)",
        quoted_list(&names)
    )
}

/// The binary COPY straight into the target, for a unit the table holds nothing of yet; takes
/// the very stream [`copy_into_staging`] does, so it can be replayed there.
pub fn copy_into_table(table: &TableName, columns: &[Column]) -> String {
    let names: Vec<&str> = columns.iter().map(|column| column.name.as_str()).collect();
    format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        table.sql(),
        quoted_list(&names)
    )
}

/// Whether `engine_loads` records a load of the unit (`$1`…`$3`: the pipeline, the target table
/// and the source file, as [`record_load`] writes them): one look-up of its primary key.
pub fn unit_recorded(table: &TableName) -> String {
    format!(
        "SELECT EXISTS (SELECT 1 FROM {} WHERE pipeline = $1 AND target_table = $2 AND \
         source_file = $3)",
        table.sibling(LOADS_TABLE)
    )
}

/// Whether the target holds any row whose unit column is `$1`: what decides that a unit is new
/// to the table, and its rows can skip the upsert. Compared as the column's own type, so an index
/// on it is used; without one it reads the table up to the first such row (the upsert path's
/// removal of vanished records reads all of it).
pub fn unit_has_rows(table: &TableName, unit_column: &str) -> String {
    format!(
        "SELECT EXISTS (SELECT 1 FROM {} WHERE {} = $1)",
        table.sql(),
        quote_ident(unit_column)
    )
}

/// Refreshes the planner's statistics of the staging table before it is merged.
pub fn analyze_staging() -> String {
    format!("ANALYZE {STAGING_TABLE}")
}

/// Staged rows into the target: new keys inserted, existing ones updated only where a value
/// differs, so unchanged rows are not rewritten. A table of nothing but key columns gets
/// `DO NOTHING`.
pub fn upsert(table: &TableName, columns: &[Column], key: &[String]) -> String {
    let names: Vec<&str> = columns.iter().map(|column| column.name.as_str()).collect();
    let select_list = columns
        .iter()
        .map(|column| column.staged("s"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut upsert = format!(
        "INSERT INTO {} AS t ({}) SELECT {select_list} FROM {STAGING_TABLE} s ON CONFLICT ({}) ",
        table.sql(),
        quoted_list(&names),
        quoted_list(key)
    );
    let others: Vec<String> = names
        .iter()
        .filter(|name| !key.iter().any(|column| column == *name))
        .map(|name| quote_ident(name))
        .collect();
    if others.is_empty() {
        upsert.push_str("DO NOTHING");
    } else {
        let set = others
            .iter()
            .map(|name| format!("{name} = EXCLUDED.{name}"))
            .collect::<Vec<_>>()
            .join(", ");
        let old = others
            .iter()
            .map(|name| format!("t.{name}"))
            .collect::<Vec<_>>()
            .join(", ");
        let new = others
            .iter()
            .map(|name| format!("EXCLUDED.{name}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(
            upsert,
            "DO UPDATE SET {set} WHERE ROW({old}) IS DISTINCT FROM ROW({new})"
        );
    }
    upsert
}

/// A newer version of a unit replaces the older one: the target's rows of the staged units
/// whose key the staged rows no longer hold are deleted. `unit_column` is the column whose value
/// names a row's unit (one value per unit, like a Toss row's `source_file`); None when the
/// records carry no such column, since then the rows of a unit cannot be told apart.
pub fn delete_vanished(
    table: &TableName,
    columns: &[Column],
    key: &[String],
    unit_column: Option<&str>,
) -> Option<String> {
    let unit_column = unit_column?;
    let source_file = columns.iter().find(|column| column.name == unit_column)?;
    let matches = key
        .iter()
        .map(|name| {
            let column = columns
                .iter()
                .find(|column| column.name == *name)
                .unwrap_or(&columns[0]);
            format!("{} = t.{}", column.staged("s"), quote_ident(&column.name))
        })
        .collect::<Vec<_>>()
        .join(" AND ");
    Some(format!(
        "DELETE FROM {} t WHERE t.{} IN (SELECT DISTINCT {} FROM {STAGING_TABLE} s) AND NOT \
         EXISTS (SELECT 1 FROM {STAGING_TABLE} s WHERE {matches})",
        table.sql(),
        quote_ident(&source_file.name),
        source_file.staged("s"),
    ))
}

/// The rows of one unit in the target (`$1`: the unit's name), for `engine status --verify`.
pub fn count_unit_rows(table: &TableName, unit_column: &str) -> String {
    format!(
        "SELECT count(*) FROM {} WHERE {}::text = $1",
        table.sql(),
        quote_ident(unit_column)
    )
}

/// Records which version of a file the table now holds; `$1`…`$5` are the pipeline, the
/// target table, the source file, its content hash and its row count.
pub fn record_load(table: &TableName) -> String {
    format!(
        "INSERT INTO {} (pipeline, target_table, source_file, content_hash, rows, loaded_at) \
         VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (pipeline, target_table, source_file) \
         DO UPDATE SET content_hash = EXCLUDED.content_hash, rows = EXCLUDED.rows, loaded_at = \
         EXCLUDED.loaded_at",
        table.sibling(LOADS_TABLE)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, pg_type: PgType, cast: Option<&str>) -> Column {
        Column {
            name: name.to_owned(),
            pg_type,
            cast: cast.map(str::to_owned),
        }
    }

    fn key(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    fn definition(name: &str, sql_type: &str) -> ColumnDefinition {
        ColumnDefinition {
            name: name.to_owned(),
            sql_type: sql_type.to_owned(),
        }
    }

    /// mid and tid as the key, one odd name, one column cast to a wider target type.
    fn columns() -> Vec<Column> {
        vec![
            column("mid", PgType::Text, None),
            column("tid", PgType::Text, None),
            column("pay \"amt\"", PgType::Int8, Some("numeric(18,0)")),
            column("source_file", PgType::Text, None),
        ]
    }

    #[test]
    fn counting_a_units_rows_quotes_the_column() {
        let table = TableName::parse("finance.toss").unwrap();
        assert_eq!(
            count_unit_rows(&table, "source \"file\""),
            "SELECT count(*) FROM \"finance\".\"toss\" WHERE \"source \"\"file\"\"\"::text = $1"
        );
    }

    #[test]
    fn table_names_may_carry_a_schema() {
        let plain = TableName::parse("toss_transactions").unwrap();
        assert_eq!(plain.sql(), "\"toss_transactions\"");
        assert_eq!(plain.to_string(), "toss_transactions");
        let qualified = TableName::parse(" finance . toss ").unwrap();
        assert_eq!(qualified.sql(), "\"finance\".\"toss\"");
        assert_eq!(qualified.to_string(), "finance.toss");
        assert_eq!(
            qualified.sibling("engine_loads"),
            "\"finance\".\"engine_loads\""
        );
        assert_eq!(TableName::parse("we\"ird").unwrap().sql(), "\"we\"\"ird\"");
        assert!(TableName::parse("a.b.c").is_err());
        assert!(TableName::parse("").is_err());
        assert!(TableName::parse("finance.").is_err());
    }

    #[test]
    fn the_created_table_has_the_key_as_primary_key() {
        let table = TableName::parse("toss").unwrap();
        assert_eq!(
            create_table(
                &table,
                &[
                    definition("mid", "text"),
                    definition("pay \"amt\"", "numeric(18,2)")
                ],
                &key(&["mid"])
            ),
            "CREATE TABLE IF NOT EXISTS \"toss\" (\"mid\" text, \"pay \"\"amt\"\"\" numeric(18,2), \
             PRIMARY KEY (\"mid\"))"
        );
        let qualified = TableName::parse("finance.toss").unwrap();
        assert_eq!(
            create_table(
                &qualified,
                &[definition("mid", "text"), definition("tid", "text")],
                &key(&["mid", "tid"])
            ),
            "CREATE SCHEMA IF NOT EXISTS \"finance\";CREATE TABLE IF NOT EXISTS \
             \"finance\".\"toss\" (\"mid\" text, \"tid\" text, PRIMARY KEY (\"mid\", \"tid\"))"
        );
    }

    #[test]
    fn missing_columns_are_added_in_one_statement() {
        let table = TableName::parse("finance.toss").unwrap();
        let missing = [definition("memo", "text"), definition("a\"b", "bigint")];
        assert_eq!(
            column_additions(&missing),
            "ADD COLUMN IF NOT EXISTS \"memo\" text, ADD COLUMN IF NOT EXISTS \"a\"\"b\" bigint"
        );
        assert_eq!(
            add_columns(&table, &missing),
            "ALTER TABLE \"finance\".\"toss\" ADD COLUMN IF NOT EXISTS \"memo\" text, ADD \
             COLUMN IF NOT EXISTS \"a\"\"b\" bigint"
        );
    }

    #[test]
    fn the_loads_table_sits_beside_the_target() {
        let table = TableName::parse("finance.toss").unwrap();
        assert_eq!(
            create_loads_table(&table),
            "CREATE TABLE IF NOT EXISTS \"finance\".\"engine_loads\" (pipeline text NOT NULL, \
             target_table text NOT NULL, source_file text NOT NULL, content_hash text NOT NULL, \
             rows bigint NOT NULL, loaded_at timestamptz NOT NULL, PRIMARY KEY (pipeline, \
             target_table, source_file))"
        );
        assert_eq!(
            record_load(&TableName::parse("toss").unwrap()),
            "INSERT INTO \"engine_loads\" (pipeline, target_table, source_file, content_hash, \
             rows, loaded_at) VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (pipeline, \
             target_table, source_file) DO UPDATE SET content_hash = EXCLUDED.content_hash, rows \
             = EXCLUDED.rows, loaded_at = EXCLUDED.loaded_at"
        );
    }

    #[test]
    fn staging_takes_the_copy_types() {
        let columns = columns();
        assert_eq!(
            create_staging(&columns),
            "CREATE TEMP TABLE engine_staging (\"mid\" text, \"tid\" text, \"pay \"\"amt\"\"\" \
             bigint, \"source_file\" text) ON COMMIT DROP"
        );
        assert_eq!(
            copy_into_staging(&columns),
            "COPY engine_staging (\"mid\", \"tid\", \"pay \"\"amt\"\"\", \"source_file\") FROM \
             STDIN (FORMAT binary)"
        );
        assert_eq!(analyze_staging(), "ANALYZE engine_staging");
    }

    #[test]
    fn a_new_unit_is_copied_straight_into_the_table() {
        let table = TableName::parse("finance.toss").unwrap();
        let columns = vec![
            column("mid", PgType::Text, None),
            column("source \"file\"", PgType::Text, None),
        ];
        assert_eq!(
            copy_into_table(&table, &columns),
            "COPY \"finance\".\"toss\" (\"mid\", \"source \"\"file\"\"\") FROM STDIN (FORMAT \
             binary)"
        );
        assert_eq!(
            unit_recorded(&table),
            "SELECT EXISTS (SELECT 1 FROM \"finance\".\"engine_loads\" WHERE pipeline = $1 AND \
             target_table = $2 AND source_file = $3)"
        );
        assert_eq!(
            unit_has_rows(&table, "source \"file\""),
            "SELECT EXISTS (SELECT 1 FROM \"finance\".\"toss\" WHERE \"source \"\"file\"\"\" = $1)"
        );
    }

    #[test]
    fn the_upsert_rewrites_only_rows_that_changed() {
        let table = TableName::parse("finance.toss").unwrap();
        assert_eq!(
            upsert(&table, &columns(), &key(&["mid", "tid"])),
            "INSERT INTO \"finance\".\"toss\" AS t (\"mid\", \"tid\", \"pay \"\"amt\"\"\", \
             \"source_file\") SELECT s.\"mid\", s.\"tid\", s.\"pay \"\"amt\"\"\"::numeric(18,0), \
             s.\"source_file\" FROM engine_staging s ON CONFLICT (\"mid\", \"tid\") DO UPDATE \
             SET \"pay \"\"amt\"\"\" = EXCLUDED.\"pay \"\"amt\"\"\", \"source_file\" = \
             EXCLUDED.\"source_file\" WHERE ROW(t.\"pay \"\"amt\"\"\", t.\"source_file\") IS \
             DISTINCT FROM ROW(EXCLUDED.\"pay \"\"amt\"\"\", EXCLUDED.\"source_file\")"
        );
    }

    #[test]
    fn a_table_of_only_key_columns_does_nothing_on_conflict() {
        let table = TableName::parse("toss").unwrap();
        let columns = vec![
            column("mid", PgType::Text, None),
            column("tid", PgType::Text, None),
        ];
        assert_eq!(
            upsert(&table, &columns, &key(&["mid", "tid"])),
            "INSERT INTO \"toss\" AS t (\"mid\", \"tid\") SELECT s.\"mid\", s.\"tid\" FROM \
             engine_staging s ON CONFLICT (\"mid\", \"tid\") DO NOTHING"
        );
    }

    #[test]
    fn vanished_records_are_deleted_by_source_file_and_key() {
        let table = TableName::parse("toss").unwrap();
        let mut columns = columns();
        columns[0].cast = Some("varchar(10)".to_owned());
        assert_eq!(
            delete_vanished(&table, &columns, &key(&["mid", "tid"]), Some("source_file")).unwrap(),
            "DELETE FROM \"toss\" t WHERE t.\"source_file\" IN (SELECT DISTINCT \
             s.\"source_file\" FROM engine_staging s) AND NOT EXISTS (SELECT 1 FROM \
             engine_staging s WHERE s.\"mid\"::varchar(10) = t.\"mid\" AND s.\"tid\" = t.\"tid\")"
        );
        assert_eq!(
            delete_vanished(&table, &columns, &key(&["mid", "tid"]), None),
            None,
            "without a column naming the unit there is nothing to delete by"
        );
        columns.pop();
        assert_eq!(
            delete_vanished(&table, &columns, &key(&["mid", "tid"]), Some("source_file")),
            None,
            "without source_file there is nothing to delete by"
        );
    }
}
