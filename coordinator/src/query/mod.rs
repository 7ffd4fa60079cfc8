//! Reading the warehouse with DuckDB, confined.
//!
//! [`QueryEngine::open`] starts an in-memory DuckDB, defines one view per table over
//! exactly the committed Parquet files (never a glob: an uncommitted file must stay
//! invisible), then the derived views of [`views`], and then locks the connection
//! down before any user SQL runs:
//! - `allowed_paths` = the committed files, then `enable_external_access = false`: no
//!   other file, URL or extension can be read (`read_csv('/etc/passwd')` fails);
//! - `lock_configuration = true`: no `SET`/`PRAGMA` can undo that;
//! - bounded resources ([`QueryLimits`]): memory, spill space in a private temporary
//!   directory (DuckDB's default, `.tmp/` under the working directory, could be read
//!   back through the allowed paths), wall time (a watchdog interrupts the query) and
//!   rows returned (counted while the result streams, not after it is all in memory);
//! - each user statement is first parsed by DuckDB's own parser
//!   (`json_serialize_sql`), which accepts exactly one `SELECT`: `COPY … TO`, `ATTACH`,
//!   `INSTALL`/`LOAD`, `CREATE`, `PRAGMA`, `SET` and multi-statement strings are refused
//!   with a clear message before anything runs.
//!
//! What it must never do: run user SQL on a connection that can write or reach outside
//! the warehouse's committed files.

pub mod render;
pub mod views;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use duckdb::Connection;

use crate::warehouse::schema::Table;
use crate::warehouse::sync::LocalFiles;

/// Errors of the query layer; user-facing messages.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("refused: {0}")]
    Refused(String),
    #[error("sql error: {0}")]
    Sql(String),
    #[error("setting up the warehouse views: {0}")]
    Setup(String),
    #[error("stopped: {0}")]
    Limit(String),
}

/// What one query may use. A query that reaches a bound fails with a message naming it;
/// nothing is written either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Wall time of one query, result streaming included.
    pub timeout: Duration,
    /// DuckDB's memory limit (its buffer manager spills beyond it, up to `temp_mb`);
    /// 0 leaves DuckDB's default.
    pub memory_mb: u64,
    /// Spill space on disk; 0 leaves DuckDB's default.
    pub temp_mb: u64,
    /// Rows one query may return.
    pub max_rows: usize,
}

impl Default for QueryLimits {
    /// For SQL a person typed (`accelbench query`): 5 minutes, 2 GiB, 8 GiB of spill,
    /// a million rows.
    fn default() -> QueryLimits {
        QueryLimits { timeout: Duration::from_secs(300), memory_mb: 2048, temp_mb: 8192, max_rows: 1_000_000 }
    }
}

impl QueryLimits {
    /// For the commands' own fixed queries (reports, compare, regressions, …), which
    /// return a row per result and must scale with the warehouse: no row, time or
    /// memory bound beyond DuckDB's own (80 % of memory); spill still goes to the
    /// private directory.
    pub fn fixed_queries() -> QueryLimits {
        QueryLimits { timeout: Duration::from_secs(7 * 24 * 3600), memory_mb: 0, temp_mb: 0, max_rows: usize::MAX }
    }
}

impl From<duckdb::Error> for QueryError {
    fn from(e: duckdb::Error) -> Self {
        QueryError::Sql(e.to_string())
    }
}

/// A confined DuckDB connection with the warehouse views.
pub struct QueryEngine {
    conn: Connection,
    limits: QueryLimits,
    /// DuckDB's spill directory, ours alone, removed with the engine.
    _temp: tempfile::TempDir,
}

/// The rows of one query.
pub struct QueryOutput {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl QueryOutput {
    pub fn n_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

impl QueryEngine {
    /// Views over `files` (the committed files, as local paths), then confinement, for
    /// the commands' fixed queries ([`QueryLimits::fixed_queries`]).
    pub fn open(files: &LocalFiles) -> Result<QueryEngine, QueryError> {
        QueryEngine::open_with(files, QueryLimits::fixed_queries())
    }

    /// [`QueryEngine::open`] with `limits`.
    pub fn open_with(files: &LocalFiles, limits: QueryLimits) -> Result<QueryEngine, QueryError> {
        let temp = tempfile::Builder::new()
            .prefix("accelbench-query-")
            .tempdir()
            .map_err(|e| QueryError::Setup(format!("a temporary directory for DuckDB: {e}")))?;
        let conn = Connection::open_in_memory().map_err(|e| QueryError::Setup(e.to_string()))?;
        let setup = |sql: &str| conn.execute_batch(sql).map_err(|e| QueryError::Setup(format!("{e}: {sql}")));
        // The json extension is compiled in; loading it gives the parser check below.
        setup("LOAD json;")?;
        let mut all_paths: Vec<&PathBuf> = Vec::new();
        for table in Table::ALL {
            let paths = files.files.get(&table).map(Vec::as_slice).unwrap_or_default();
            setup(&table_view(table, paths))?;
            all_paths.extend(paths);
        }
        for sql in views::DERIVED {
            setup(sql)?;
        }
        let allowed = all_paths.iter().map(|p| sql_string(&p.to_string_lossy())).collect::<Vec<_>>().join(", ");
        setup(&format!("SET allowed_paths = [{allowed}];"))?;
        setup(&format!("SET temp_directory = {};", sql_string(&temp.path().to_string_lossy())))?;
        if limits.memory_mb > 0 {
            setup(&format!("SET memory_limit = '{}MB';", limits.memory_mb))?;
        }
        if limits.temp_mb > 0 {
            setup(&format!("SET max_temp_directory_size = '{}MB';", limits.temp_mb))?;
        }
        setup("SET enable_external_access = false;")?;
        setup("SET autoinstall_known_extensions = false; SET autoload_known_extensions = false;")?;
        setup("SET lock_configuration = true;")?;
        Ok(QueryEngine { conn, limits, _temp: temp })
    }

    /// Runs one read-only `SELECT` of a user; anything else is refused unrun.
    pub fn query(&self, sql: &str) -> Result<QueryOutput, QueryError> {
        self.check_select(sql)?;
        let timeout = self.limits.timeout;
        let watchdog = Watchdog::start(self.conn.interrupt_handle(), timeout);
        let over_time = || QueryError::Limit(format!("the query ran for {}s, the time limit", timeout.as_secs()));
        let result = self.run_bounded(sql);
        if watchdog.stop() {
            return Err(over_time());
        }
        result
    }

    fn run_bounded(&self, sql: &str) -> Result<QueryOutput, QueryError> {
        let mut stmt = self.conn.prepare(sql)?;
        let arrow = stmt.query_arrow([])?;
        let schema = arrow.get_schema();
        let (mut batches, mut rows) = (Vec::new(), 0usize);
        for batch in arrow {
            rows += batch.num_rows();
            if rows > self.limits.max_rows {
                return Err(QueryError::Limit(format!(
                    "more than {} rows; aggregate, or add a LIMIT",
                    self.limits.max_rows
                )));
            }
            batches.push(batch);
        }
        Ok(QueryOutput { schema, batches })
    }

    /// DuckDB's own parser decides: exactly one statement, and a `SELECT`.
    fn check_select(&self, sql: &str) -> Result<(), QueryError> {
        let json: String = self
            .conn
            .query_row("SELECT json_serialize_sql(?::VARCHAR)", [sql], |r| r.get(0))
            .map_err(|e| QueryError::Refused(format!("could not check the statement: {e}")))?;
        let v: serde_json::Value = serde_json::from_str(&json)
            .map_err(|e| QueryError::Refused(format!("could not check the statement: {e}")))?;
        if v["error"].as_bool() != Some(false) {
            let msg = v["error_message"].as_str().unwrap_or("not a statement");
            let msg = if msg.contains("Only SELECT") {
                "only a single read-only SELECT can run against the warehouse (no COPY, ATTACH, INSTALL, LOAD, CREATE, \
                 SET or PRAGMA)"
                    .to_string()
            } else {
                msg.to_string()
            };
            return Err(QueryError::Refused(msg));
        }
        match v["statements"].as_array().map(Vec::len) {
            Some(1) => Ok(()),
            Some(n) => Err(QueryError::Refused(format!("one statement at a time, got {n}"))),
            None => Err(QueryError::Refused("not a statement".into())),
        }
    }
}

/// Interrupts the connection's running query once `timeout` has passed, unless stopped
/// first.
struct Watchdog {
    stop: mpsc::Sender<()>,
    fired: Arc<AtomicBool>,
}

impl Watchdog {
    fn start(handle: Arc<duckdb::InterruptHandle>, timeout: Duration) -> Watchdog {
        let (stop, stopped) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(timeout) {
                flag.store(true, Ordering::SeqCst);
                handle.interrupt();
            }
        });
        Watchdog { stop, fired }
    }

    /// Stops the watchdog; whether it had fired.
    fn stop(self) -> bool {
        // The thread may have ended already (it fired): then there is no one to tell.
        let _ = self.stop.send(());
        self.fired.load(Ordering::SeqCst)
    }
}

/// `CREATE VIEW <table>` over its committed files, or an empty typed view if none. The
/// Hive partition columns are not added: the same values are columns of every row, and
/// an empty view must have the same columns as a full one.
fn table_view(table: Table, paths: &[PathBuf]) -> String {
    let name = table.as_str();
    if paths.is_empty() {
        let cols: Vec<String> = table
            .schema()
            .fields()
            .iter()
            .map(|f| format!("CAST(NULL AS {}) AS \"{}\"", sql_type(f.data_type()), f.name()))
            .collect();
        return format!("CREATE VIEW {name} AS SELECT {} WHERE false;", cols.join(", "));
    }
    let list = paths.iter().map(|p| sql_string(&p.to_string_lossy())).collect::<Vec<_>>().join(", ");
    format!(
        "CREATE VIEW {name} AS SELECT * FROM read_parquet([{list}], hive_partitioning = false, union_by_name = true);"
    )
}

/// The DuckDB type Parquet files of an Arrow type read back as.
fn sql_type(t: &DataType) -> &'static str {
    match t {
        DataType::Boolean => "BOOLEAN",
        DataType::Int32 => "INTEGER",
        DataType::Int64 => "BIGINT",
        DataType::UInt32 => "UINTEGER",
        DataType::UInt64 => "UBIGINT",
        DataType::Float32 => "FLOAT",
        DataType::Float64 => "DOUBLE",
        DataType::Timestamp(TimeUnit::Millisecond, Some(_)) => "TIMESTAMP WITH TIME ZONE",
        DataType::Timestamp(..) => "TIMESTAMP",
        _ => "VARCHAR",
    }
}

/// A single-quoted SQL string literal.
pub fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
