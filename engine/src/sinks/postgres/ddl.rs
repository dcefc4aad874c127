//! The table as the records need it, settled once per schema before any data moves: every
//! column must have a PostgreSQL type, the key must be among the columns, the table must exist
//! (or be created), hold every column (or have the missing ones added) in a type at least as
//! wide as the values, and `engine_loads` must be beside it. A table that does not fit is
//! reported with the statement that would fix it; nothing is ever narrowed or dropped.
//!
//! The outcome is a [`TablePlan`]: the statements for loading that schema, reused for every file
//! until the schema or the connection changes — among them, when the table allows it, the
//! [`DirectCopy`] that loads a unit new to the table without staging or upsert.

use super::PostgresSink;
use super::sql::{self, Column, ColumnDefinition};
use super::types::{PgType, column_sql};
use crate::error::Result;
use arrow::datatypes::SchemaRef;
use std::collections::HashMap;
use tokio_postgres::Client;

/// Column name → (`pg_type.typname`, the type as SQL) of an existing table.
type ExistingColumns = HashMap<String, (String, String)>;

/// Everything about loading one schema into the table, worked out once.
pub struct TablePlan {
    pub schema: SchemaRef,
    /// Batch column index and how it travels, in staging column order.
    pub columns: Vec<(usize, PgType)>,
    pub create_staging: String,
    pub copy: String,
    pub delete_vanished: Option<String>,
    /// The column naming each row's unit, when the records carry one.
    pub unit_column: Option<String>,
    pub upsert: String,
    pub record_load: String,
    pub key: Vec<String>,
    /// How a unit the table holds nothing of goes straight in; None when the table cannot
    /// take it so (see [`sql::TABLE_TAKES_COPY`]) or some value needs a cast on its way in.
    pub direct: Option<DirectCopy>,
}

/// A unit new to the table needs neither staging nor upsert nor removal of vanished records:
/// its rows are simply inserted, by the same binary `COPY` straight into the table. Whether the
/// unit is new is asked of `engine_loads` and of the table itself, in the unit's transaction.
pub struct DirectCopy {
    /// The binary COPY into the target; its stream is the staging COPY's.
    pub copy: String,
    /// Whether `engine_loads` records the unit already.
    pub unit_recorded: String,
    /// The column naming each row's unit, as batch column index, and the look-up of the
    /// table's rows of one unit; None when the records carry no such column (then nothing is
    /// ever removed, and the upsert of a new key is an insert).
    pub unit: Option<(usize, String)>,
}

impl PostgresSink {
    /// Checks the table against `schema` (creating or widening it where allowed) and writes the
    /// statements for loading it.
    pub(super) async fn make_plan(&self, client: &Client, schema: &SchemaRef) -> Result<TablePlan> {
        let mut columns = Vec::with_capacity(schema.fields().len());
        let mut unsupported = Vec::new();
        for (index, field) in schema.fields().iter().enumerate() {
            match PgType::for_arrow(field.data_type()) {
                Some(pg_type) => columns.push((index, pg_type)),
                None => unsupported.push(format!("{} ({})", field.name(), field.data_type())),
            }
        }
        if !unsupported.is_empty() {
            return Err(self.failed(
                format!(
                    "no PostgreSQL type for column(s) {}; convert them in a transform",
                    unsupported.join(", ")
                ),
                None,
            ));
        }
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let key = self.resolve_key(&names)?;

        let existing = self.existing_columns(client).await?;
        let existing = match existing {
            Some(existing) => existing,
            None if self.create_table => {
                self.create(client, schema, &columns, &key).await?;
                self.existing_columns(client).await?.unwrap_or_default()
            }
            None => {
                return Err(self.failed(
                    format!(
                        "table {} does not exist; create it, or set create_table = true",
                        self.table
                    ),
                    None,
                ));
            }
        };
        let existing = self
            .check_columns(client, schema, &columns, existing)
            .await?;
        self.ensure_loads_table(client).await?;

        // Staged values are cast to the target's own column types where they differ.
        let travelling: Vec<Column> = columns
            .iter()
            .map(|&(index, pg_type)| {
                let (typname, formatted) = &existing[names[index]];
                Column {
                    name: names[index].to_owned(),
                    pg_type,
                    cast: pg_type.needs_cast_to(typname).then(|| formatted.clone()),
                }
            })
            .collect();
        let direct = self
            .direct_copy(client, schema, &columns, &travelling, &key)
            .await?;
        Ok(TablePlan {
            schema: schema.clone(),
            create_staging: sql::create_staging(&travelling),
            copy: sql::copy_into_staging(&travelling),
            delete_vanished: sql::delete_vanished(
                &self.table,
                &travelling,
                &key,
                unit_column(schema).as_deref(),
            ),
            unit_column: unit_column(schema),
            upsert: sql::upsert(&self.table, &travelling, &key),
            record_load: sql::record_load(&self.table),
            columns,
            key,
            direct,
        })
    }

    /// The direct path for this schema, when every value goes in uncast (the COPY writes the
    /// staging types), the unit column (if any) is text, and the table takes a plain COPY.
    async fn direct_copy(
        &self,
        client: &Client,
        schema: &SchemaRef,
        columns: &[(usize, PgType)],
        travelling: &[Column],
        key: &[String],
    ) -> Result<Option<DirectCopy>> {
        if travelling.iter().any(|column| column.cast.is_some()) {
            return Ok(None);
        }
        let unit = match unit_column(schema) {
            None => None,
            Some(name) => {
                let text = |index: usize| {
                    columns
                        .iter()
                        .any(|&(at, pg_type)| at == index && pg_type == PgType::Text)
                };
                match schema.index_of(&name) {
                    Ok(index) if text(index) => {
                        Some((index, sql::unit_has_rows(&self.table, &name)))
                    }
                    _ => return Ok(None),
                }
            }
        };
        let takes = client
            .query_opt(sql::TABLE_TAKES_COPY, &[&self.table.sql(), &key])
            .await
            .map_err(|err| {
                self.failed(
                    format!("cannot read the indexes of {}", self.table),
                    Some(err),
                )
            })?
            .is_some_and(|row| row.get::<_, Option<bool>>(0) == Some(true));
        if !takes {
            tracing::debug!(
                sink = %self.name,
                table = %self.table,
                "new units go through staging too: the table has triggers, rules, row security \
                 or no unique index on exactly the key"
            );
            return Ok(None);
        }
        Ok(Some(DirectCopy {
            copy: sql::copy_into_table(&self.table, travelling),
            unit_recorded: sql::unit_recorded(&self.table),
            unit,
        }))
    }

    /// The configured key, or the record key when the records carry all of it.
    fn resolve_key(&self, names: &[&str]) -> Result<Vec<String>> {
        match &self.key {
            Some(key) => {
                let missing: Vec<&String> = key
                    .iter()
                    .filter(|column| !names.contains(&column.as_str()))
                    .collect();
                if missing.is_empty() {
                    Ok(key.clone())
                } else {
                    Err(self.failed(
                        format!(
                            "key column(s) {} are not in the records (they have: {}); fix `key`",
                            join_names(&missing),
                            names.join(", ")
                        ),
                        None,
                    ))
                }
            }
            None if !self.record_key.is_empty()
                && self
                    .record_key
                    .iter()
                    .all(|column| names.contains(&column.as_str())) =>
            {
                Ok(self.record_key.clone())
            }
            None => Err(self.failed(
                format!(
                    "the records lack the record key ({}) after the transforms; set `key` to \
                     the columns that identify a record",
                    self.record_key.join(", ")
                ),
                None,
            )),
        }
    }

    /// The columns of the table as it is now; None if it does not exist.
    async fn existing_columns(&self, client: &Client) -> Result<Option<ExistingColumns>> {
        let table = &self.table;
        let found = client
            .query_one(sql::TABLE_OID, &[&table.sql()])
            .await
            .map_err(|err| self.failed(format!("cannot look up table {table}"), Some(err)))?;
        let oid: Option<u32> = found.get(0);
        let Some(oid) = oid else {
            return Ok(None);
        };
        let rows = client
            .query(sql::TABLE_COLUMNS, &[&oid])
            .await
            .map_err(|err| self.failed(format!("cannot read the columns of {table}"), Some(err)))?;
        Ok(Some(
            rows.iter()
                .map(|row| (row.get(0), (row.get(1), row.get(2))))
                .collect(),
        ))
    }

    async fn create(
        &self,
        client: &Client,
        schema: &SchemaRef,
        columns: &[(usize, PgType)],
        key: &[String],
    ) -> Result<()> {
        let definitions: Vec<ColumnDefinition> = columns
            .iter()
            .map(|&(index, pg_type)| definition(schema, index, pg_type))
            .collect();
        client
            .batch_execute(&sql::create_table(&self.table, &definitions, key))
            .await
            .map_err(|err| self.failed(format!("cannot create table {}", self.table), Some(err)))?;
        tracing::info!(sink = %self.name, table = %self.table, key = %key.join(", "), "created the table");
        Ok(())
    }

    /// Every column of the records must exist in the table with a type that holds it.
    async fn check_columns(
        &self,
        client: &Client,
        schema: &SchemaRef,
        columns: &[(usize, PgType)],
        mut existing: ExistingColumns,
    ) -> Result<ExistingColumns> {
        let mut missing = Vec::new();
        let mut mismatched = Vec::new();
        for &(index, pg_type) in columns {
            let field = schema.field(index);
            match existing.get(field.name()) {
                None => missing.push((index, pg_type)),
                Some((typname, formatted)) if !pg_type.fits_in(typname) => {
                    mismatched.push(format!(
                        "{} is {formatted} in the table but {} ({}) in the records",
                        field.name(),
                        column_sql(field.data_type(), pg_type),
                        field.data_type()
                    ))
                }
                Some(_) => {}
            }
        }
        if !mismatched.is_empty() {
            return Err(self.failed(
                format!(
                    "table {}: {}; change the column type (ALTER TABLE … ALTER COLUMN … TYPE) \
                     or convert the values in a transform",
                    self.table,
                    mismatched.join("; ")
                ),
                None,
            ));
        }
        if missing.is_empty() {
            return Ok(existing);
        }
        let additions: Vec<ColumnDefinition> = missing
            .iter()
            .map(|&(index, pg_type)| definition(schema, index, pg_type))
            .collect();
        let alter = sql::add_columns(&self.table, &additions);
        if !self.add_columns {
            return Err(self.failed(
                format!(
                    "table {} has no column {}; add it ({alter}) or set add_columns = true",
                    self.table,
                    join_names(&additions.iter().map(|c| &c.name).collect::<Vec<_>>()),
                ),
                None,
            ));
        }
        client.batch_execute(&alter).await.map_err(|err| {
            self.failed(format!("cannot add columns to {}", self.table), Some(err))
        })?;
        tracing::info!(
            sink = %self.name,
            table = %self.table,
            "added column(s) {}",
            sql::column_additions(&additions)
        );
        for (&(_, pg_type), addition) in missing.iter().zip(additions) {
            existing.insert(
                addition.name,
                (pg_type.created_typname().to_owned(), addition.sql_type),
            );
        }
        Ok(existing)
    }

    async fn ensure_loads_table(&self, client: &Client) -> Result<()> {
        let loads = self.table.sibling(sql::LOADS_TABLE);
        let present = client
            .query_one(sql::TABLE_EXISTS, &[&loads])
            .await
            .map_err(|err| self.failed("cannot look up engine_loads", Some(err)))?;
        if present.get::<_, bool>(0) {
            return Ok(());
        }
        client
            .batch_execute(&sql::create_loads_table(&self.table))
            .await
            .map_err(|err| self.failed(format!("cannot create {loads}"), Some(err)))
    }
}

/// The column a created table gives batch column `index`.
fn definition(schema: &SchemaRef, index: usize, pg_type: PgType) -> ColumnDefinition {
    let field = schema.field(index);
    ColumnDefinition {
        name: field.name().clone(),
        sql_type: column_sql(field.data_type(), pg_type),
    }
}

fn join_names<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|name| name.as_ref())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The column whose value names a row's load unit: the one its format marks constant over the
/// unit (see [`crate::hints`]), whatever its name.
fn unit_column(schema: &SchemaRef) -> Option<String> {
    schema
        .fields()
        .iter()
        .find(|field| crate::hints::shape(field) == Some(crate::hints::Shape::ConstantPerUnit))
        .map(|field| field.name().clone())
}
