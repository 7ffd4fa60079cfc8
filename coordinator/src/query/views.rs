//! The derived views every reader sees besides the tables: one place for their SQL, so
//! the CLI, the reports and anyone opening the warehouse get the same definitions.
//!
//! - `latest_results`: the newest finished attempt per series (model, hardware class,
//!   batch, sequence length, precision, mode, engine), measured rows before imported
//!   ones only when newer.
//! - `speedup_vs_cpu`: each ok row of `latest_results` on a non-CPU class against the
//!   CPU row of the same coordinates, from the same sweep if there is one, else the
//!   newest.
//! - `compatibility_matrix`: family × hardware class: `ok` if any cell ran, else
//!   `unsupported` if the engine refused, else `failed`; `untested` where nothing ran;
//!   with the best throughput seen.

pub const DERIVED: &[&str] = &[
    // The newest row per series by (finished_at, attempt), picked by id with an aggregate
    // and joined back: the same rows as a `row_number()` window over the series, about
    // 6x faster on a million rows (a window sorts every column of every row; result ids
    // are unique, so the join adds none).
    "CREATE VIEW latest_results AS
     WITH newest AS (
         SELECT arg_max(result_id, (finished_at, attempt)) AS result_id
         FROM results
         GROUP BY model, hardware_class, batch, seq_len, precision, mode, engine)
     SELECT * FROM results SEMI JOIN newest USING (result_id);",
    "CREATE VIEW speedup_vs_cpu AS
     WITH cpu AS (
         SELECT * FROM results WHERE status = 'ok' AND hardware_class LIKE 'cpu/%'),
     pairs AS (
         SELECT r.model, r.family, r.batch, r.seq_len, r.precision, r.mode, r.engine, r.sweep_id,
                r.hardware_class, r.throughput_items_per_s, r.latency_p50_ns,
                c.hardware_class AS cpu_hardware_class,
                c.throughput_items_per_s AS cpu_throughput_items_per_s,
                c.latency_p50_ns AS cpu_latency_p50_ns,
                row_number() OVER (
                    PARTITION BY r.result_id
                    ORDER BY (c.sweep_id IS NOT DISTINCT FROM r.sweep_id) DESC, c.finished_at DESC) AS pick
         FROM latest_results r
         JOIN cpu c ON c.model = r.model AND c.batch = r.batch AND c.seq_len = r.seq_len
                   AND c.precision = r.precision AND c.mode = r.mode AND c.engine = r.engine
         WHERE r.status = 'ok' AND r.hardware_class NOT LIKE 'cpu/%')
     SELECT * EXCLUDE (pick),
            throughput_items_per_s / cpu_throughput_items_per_s AS speedup
     FROM pairs WHERE pick = 1;",
    "CREATE VIEW compatibility_matrix AS
     WITH families AS (SELECT DISTINCT family FROM results),
     classes AS (SELECT DISTINCT hardware_class FROM results),
     seen AS (
         SELECT family, hardware_class,
                bool_or(status = 'ok') AS any_ok,
                bool_or(status = 'unsupported') AS any_unsupported,
                count(*) AS n_results,
                round(max(throughput_items_per_s) FILTER (WHERE status = 'ok'), 3) AS best_throughput_items_per_s
         FROM results GROUP BY family, hardware_class)
     SELECT f.family, c.hardware_class,
            CASE WHEN s.n_results IS NULL THEN 'untested'
                 WHEN s.any_ok THEN 'ok'
                 WHEN s.any_unsupported THEN 'unsupported'
                 ELSE 'failed' END AS status,
            coalesce(s.n_results, 0) AS n_results,
            s.best_throughput_items_per_s
     FROM families f CROSS JOIN classes c
     LEFT JOIN seen s ON s.family = f.family AND s.hardware_class = c.hardware_class
     ORDER BY f.family, c.hardware_class;",
];
