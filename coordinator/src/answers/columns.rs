//! Reading typed values out of a query's record batch by column name, with errors that
//! name the column (the answers' SQL is ours, so a wrong type is our bug, reported, not a
//! panic).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, UInt32Type, UInt64Type};

use crate::query::QueryOutput;

/// Named columns as one batch of rows for `query::render` (floats nullable: an answer
/// leaves a number out rather than guess it).
pub fn rows(columns: Vec<(&str, ArrayRef)>) -> anyhow::Result<QueryOutput> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, a)| Field::new(*name, a.data_type().clone(), a.data_type() == &DataType::Float64))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect())?;
    Ok(QueryOutput { schema, batches: vec![batch] })
}

pub struct Columns<'b> {
    batch: &'b RecordBatch,
}

impl<'b> Columns<'b> {
    pub fn new(batch: &'b RecordBatch) -> Columns<'b> {
        Columns { batch }
    }

    fn column(&self, name: &str) -> anyhow::Result<&'b dyn Array> {
        self.batch.column_by_name(name).map(|c| c.as_ref()).ok_or_else(|| anyhow::anyhow!("no column `{name}`"))
    }

    fn wrong(name: &str, array: &dyn Array) -> anyhow::Error {
        anyhow::anyhow!("column `{name}` is {}", array.data_type())
    }

    /// Text; null reads as the empty string.
    pub fn string(&self, name: &str, row: usize) -> anyhow::Result<String> {
        let a = self.column(name)?;
        let s = a.as_string_opt::<i32>().ok_or_else(|| Self::wrong(name, a))?;
        Ok(if s.is_null(row) { String::new() } else { s.value(row).to_string() })
    }

    pub fn u32(&self, name: &str, row: usize) -> anyhow::Result<u32> {
        let a = self.column(name)?;
        Ok(a.as_primitive_opt::<UInt32Type>().ok_or_else(|| Self::wrong(name, a))?.value(row))
    }

    pub fn u64(&self, name: &str, row: usize) -> anyhow::Result<u64> {
        let a = self.column(name)?;
        Ok(a.as_primitive_opt::<UInt64Type>().ok_or_else(|| Self::wrong(name, a))?.value(row))
    }

    /// A nullable unsigned integer.
    pub fn u64_opt(&self, name: &str, row: usize) -> anyhow::Result<Option<u64>> {
        let a = self.column(name)?;
        let p = a.as_primitive_opt::<UInt64Type>().ok_or_else(|| Self::wrong(name, a))?;
        Ok((!p.is_null(row)).then(|| p.value(row)))
    }

    pub fn i64(&self, name: &str, row: usize) -> anyhow::Result<i64> {
        let a = self.column(name)?;
        Ok(a.as_primitive_opt::<Int64Type>().ok_or_else(|| Self::wrong(name, a))?.value(row))
    }

    /// A nullable float.
    pub fn f64(&self, name: &str, row: usize) -> anyhow::Result<Option<f64>> {
        let a = self.column(name)?;
        let p = a.as_primitive_opt::<Float64Type>().ok_or_else(|| Self::wrong(name, a))?;
        Ok((!p.is_null(row)).then(|| p.value(row)))
    }

    /// A list of floats (`list(latency_ns)`); null reads as empty.
    pub fn f64_list(&self, name: &str, row: usize) -> anyhow::Result<Vec<f64>> {
        let a = self.column(name)?;
        let list = a.as_list_opt::<i32>().ok_or_else(|| Self::wrong(name, a))?;
        if list.is_null(row) {
            return Ok(Vec::new());
        }
        let values = list.value(row);
        let floats = values.as_primitive_opt::<Float64Type>().ok_or_else(|| Self::wrong(name, values.as_ref()))?;
        Ok(floats.iter().flatten().collect())
    }
}
