//! `accelbench dashboard`: a read-only web dashboard over a warehouse, served by axum as
//! server-rendered HTML with SVG charts drawn on the server (plotters): no script, no
//! CDN, nothing fetched from elsewhere, so it works on an isolated lab network.
//!
//! Pages ([`pages`]): the overview (sweeps with their results by status, the newest
//! results; it refreshes itself every few seconds), a sweep (its cells and results with
//! their intervals, status and reason), the results explorer (filters; latency against
//! batch with the median's 95 % interval as error bars and throughput against batch, one
//! line per hardware class; the table the charts are drawn from) and the compatibility
//! matrix. Every query goes through the same confined DuckDB as `accelbench query`
//! ([`QueryEngine`]), over the files committed when the engine was opened; it is
//! reopened when older than [`REFRESH`], so new results show up.
//!
//! Every answer carries a content security policy that allows nothing but its own inline
//! styles and SVG, and no cross-origin header. Over TLS (`--tls-ca/--tls-cert/--tls-key`)
//! a client needs a certificate of a reading role, as for `/metrics`; plain HTTP is
//! allowed on a loopback address, elsewhere only with `--insecure`.

pub mod chart;
pub mod pages;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::cli::common::WarehouseArgs;
use crate::query::QueryEngine;

/// How long a query engine (a view of the committed files) is reused.
pub const REFRESH: Duration = Duration::from_secs(5);

/// The dashboard's shared state: where the warehouse is, and the engine over it.
pub struct Dashboard {
    warehouse: WarehouseArgs,
    engine: tokio::sync::Mutex<Option<(Instant, Arc<std::sync::Mutex<QueryEngine>>)>>,
}

impl Dashboard {
    pub fn new(warehouse: WarehouseArgs) -> Dashboard {
        Dashboard { warehouse, engine: tokio::sync::Mutex::new(None) }
    }

    /// Opens the warehouse's query engine now (a bad warehouse fails at start).
    pub async fn check(&self) -> anyhow::Result<()> {
        self.query(|_| Ok(())).await
    }

    /// Runs `f` on the query engine (opened again once older than [`REFRESH`]) on a
    /// blocking thread: DuckDB calls block.
    async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&QueryEngine) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let engine = {
            let mut cached = self.engine.lock().await;
            match &*cached {
                Some((at, engine)) if at.elapsed() < REFRESH => engine.clone(),
                _ => {
                    let engine = Arc::new(std::sync::Mutex::new(self.warehouse.query_engine().await?));
                    *cached = Some((Instant::now(), engine.clone()));
                    engine
                }
            }
        };
        tokio::task::spawn_blocking(move || {
            let engine = engine.lock().unwrap_or_else(|p| p.into_inner());
            f(&engine)
        })
        .await?
    }
}

/// The routes, with the security headers on every answer.
pub fn router(dashboard: Arc<Dashboard>) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/results", get(results))
        .route("/results/{id}", get(result))
        .route("/compatibility", get(compatibility))
        .route("/sweeps/{id}", get(sweep))
        .fallback(|| async { page_error(StatusCode::NOT_FOUND, "no such page".into()) })
        .layer(axum::middleware::map_response(security_headers))
        .with_state(dashboard)
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    // Inline SVG and styles only: no script, no frame, no form posting elsewhere.
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::CACHE_CONTROL, "no-store");
    response
}

type Page = Result<Html<String>, Response>;

fn page_error(status: StatusCode, why: String) -> Response {
    let body = pages::layout("error", &format!("<h1>{}</h1><p>{}</p>", status.as_u16(), pages::esc(&why)), None);
    (status, Html(body)).into_response()
}

fn internal(e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "dashboard page failed");
    page_error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
}

async fn overview(State(d): State<Arc<Dashboard>>) -> Page {
    d.query(pages::overview).await.map(Html).map_err(internal)
}

async fn results(State(d): State<Arc<Dashboard>>, Query(raw): Query<Vec<(String, String)>>) -> Page {
    let filters = pages::Filters::parse(&raw).map_err(|why| page_error(StatusCode::BAD_REQUEST, why))?;
    d.query(move |e| pages::results(e, &filters)).await.map(Html).map_err(internal)
}

async fn result(State(d): State<Arc<Dashboard>>, Path(id): Path<String>) -> Page {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(page_error(StatusCode::BAD_REQUEST, format!("{id:?} is not a result id (32 hex digits)")));
    }
    let lookup = id.clone();
    match d.query(move |e| pages::result(e, &lookup)).await {
        Ok(Some(html)) => Ok(Html(html)),
        Ok(None) => Err(page_error(StatusCode::NOT_FOUND, format!("no result {id} in this warehouse"))),
        Err(e) => Err(internal(e)),
    }
}

async fn compatibility(State(d): State<Arc<Dashboard>>) -> Page {
    d.query(pages::compatibility).await.map(Html).map_err(internal)
}

async fn sweep(State(d): State<Arc<Dashboard>>, Path(id): Path<String>) -> Page {
    let id: shared::ids::SweepId =
        id.parse().map_err(|_| page_error(StatusCode::BAD_REQUEST, format!("{id:?} is not a sweep id")))?;
    match d.query(move |e| pages::sweep(e, id)).await {
        Ok(Some(html)) => Ok(Html(html)),
        Ok(None) => Err(page_error(StatusCode::NOT_FOUND, format!("no sweep {id} in this warehouse"))),
        Err(e) => Err(internal(e)),
    }
}
