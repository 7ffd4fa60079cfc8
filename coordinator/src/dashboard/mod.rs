//! The web dashboard: read-only pages over a warehouse, served by axum as server-rendered
//! HTML with SVG charts drawn on the server (plotters) and one small script of our own
//! (`live.js`, compiled into the binary): no CDN, nothing fetched from elsewhere, so it
//! works on an isolated lab network. `accelbench dashboard` serves it over a bare
//! warehouse; `accelbench serve --http-listen` serves it beside `/metrics` with a
//! [`live::LiveSource`] over its Raft state, so pending and leased cells, the agents'
//! liveness and the cells they run now are shown as the coordinator knows them.
//!
//! Pages ([`pages`]): the overview (sweeps with progress bars, agents, newest results),
//! a sweep (its progress and cells with their results, intervals, status and reason), an
//! agent (its fingerprint, what it runs and ran), the results explorer (filters; latency
//! against batch with the median's 95 % interval as error bars, throughput against batch,
//! one line per hardware class; the table the charts are drawn from), one result's sample
//! histogram, the compatibility matrix, regressions and compare ([`answers`]). Parts
//! marked `data-live` are fetched again from `/live/…` every [`live::POLL_MS`], so
//! progress moves without a reload. Every query goes through the same confined DuckDB as
//! `accelbench query` ([`QueryEngine`]), over the files committed when the engine was
//! opened; it is reopened when older than [`REFRESH`], so new results show up.
//!
//! Every answer carries a content security policy that allows only this server's own
//! script, inline styles and SVG, and no cross-origin header. Over TLS a client needs a
//! certificate of a reading role, as for `/metrics`; plain HTTP is allowed on a loopback
//! address, elsewhere only with `--insecure`.

pub mod answers;
pub mod chart;
pub mod live;
pub mod pages;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use analysis::compare::CompareOptions;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use live::{LiveSource, LiveView};
use shared::ids::SweepId;

use crate::answers::compare::Coordinates;
use crate::answers::selection::Selection;
use crate::cli::common::WarehouseArgs;
use crate::query::QueryEngine;

/// How long a query engine (a view of the committed files) is reused.
pub const REFRESH: Duration = Duration::from_secs(5);

/// The dashboard's shared state: where the warehouse is, the engine over it, and the
/// coordinator's state when served by one.
pub struct Dashboard {
    warehouse: WarehouseArgs,
    engine: tokio::sync::Mutex<Option<(Instant, Arc<std::sync::Mutex<QueryEngine>>)>>,
    live: Option<LiveSource>,
}

impl Dashboard {
    /// Over a warehouse alone: what was committed.
    pub fn new(warehouse: WarehouseArgs) -> Dashboard {
        Dashboard { warehouse, engine: tokio::sync::Mutex::new(None), live: None }
    }

    /// Served by a coordinator: its state for what is not committed yet.
    pub fn with_live(warehouse: WarehouseArgs, live: LiveSource) -> Dashboard {
        Dashboard { live: Some(live), ..Dashboard::new(warehouse) }
    }

    /// The coordinator's view now, when there is a coordinator.
    async fn live(&self) -> anyhow::Result<Option<LiveView>> {
        match &self.live {
            Some(source) => Ok(Some(source.read().await?)),
            None => Ok(None),
        }
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
        .route("/agents/{id}", get(agent))
        .route("/regressions", get(regressions))
        .route("/regressions/series", get(series))
        .route("/compare", get(compare))
        .route("/live/sweeps", get(live_sweeps))
        .route("/live/agents", get(live_agents))
        .route("/live/newest", get(live_newest))
        .route("/live/sweeps/{id}", get(live_sweep))
        .route("/live/agents/{id}", get(live_agent))
        .route("/static/live.js", get(script))
        .fallback(|| async { not_found("no such page".into()) })
        .layer(axum::middleware::map_response(security_headers))
        .with_state(dashboard)
}

/// The one script: fetches the page's `data-live` parts again (see [`live`]).
const LIVE_JS: &str = include_str!("live.js");

async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], LIVE_JS).into_response()
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    // Our own script file (no inline script), inline SVG and styles, fetches to this
    // origin only; no frame, no form posting elsewhere.
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; \
         img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::CACHE_CONTROL, "no-store");
    response
}

type Page = Result<Html<String>, Refusal>;

/// A page that could not be drawn: its status and why, answered as an error page.
struct Refusal {
    status: StatusCode,
    why: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        page_error(self.status, self.why)
    }
}

fn bad(why: String) -> Refusal {
    Refusal { status: StatusCode::BAD_REQUEST, why }
}

fn not_found(why: String) -> Refusal {
    Refusal { status: StatusCode::NOT_FOUND, why }
}

fn page_error(status: StatusCode, why: String) -> Response {
    let body = pages::layout("error", &format!("<h1>{}</h1><p>{}</p>", status.as_u16(), pages::esc(&why)));
    (status, Html(body)).into_response()
}

fn internal(e: anyhow::Error) -> Refusal {
    tracing::error!(error = %format!("{e:#}"), "dashboard page failed");
    Refusal { status: StatusCode::INTERNAL_SERVER_ERROR, why: format!("{e:#}") }
}

async fn overview(State(d): State<Arc<Dashboard>>) -> Page {
    // One read of the coordinator's state for both of its parts.
    let view = d.live().await.map_err(internal)?;
    let (sweeps, agents) = (d.sweeps(view.as_ref()).await?, d.agents(view.as_ref()).await?);
    Ok(Html(pages::overview(&sweeps, &agents, &d.newest().await?)))
}

impl Dashboard {
    /// The sweeps: the coordinator's (`view`) when there is one, else the warehouse's.
    async fn sweeps(&self, view: Option<&LiveView>) -> Result<String, Refusal> {
        match view {
            Some(view) => Ok(live::sweeps_html(view)),
            None => self.query(pages::sweeps).await.map_err(internal),
        }
    }

    /// The agents: alive or not and what they run when there is a coordinator, else as
    /// last registered in the warehouse.
    async fn agents(&self, view: Option<&LiveView>) -> Result<String, Refusal> {
        match view {
            Some(view) => Ok(live::agents_html(view)),
            None => self.query(pages::agents).await.map_err(internal),
        }
    }

    async fn newest(&self) -> Result<String, Refusal> {
        self.query(pages::newest).await.map_err(internal)
    }

    /// The coordinator's progress line of a sweep, when it has one.
    async fn sweep_progress(&self, id: SweepId) -> Result<Option<String>, Refusal> {
        let view = self.live().await.map_err(internal)?;
        Ok(view.and_then(|v| live::sweep_progress_html(&v, &id.to_string())))
    }

    /// The coordinator's line about an agent, when it knows it.
    async fn agent_line(&self, id: &str) -> Result<Option<String>, Refusal> {
        let view = self.live().await.map_err(internal)?;
        Ok(view.and_then(|v| live::agent_html(&v, id)))
    }
}

async fn live_sweeps(State(d): State<Arc<Dashboard>>) -> Page {
    let view = d.live().await.map_err(internal)?;
    d.sweeps(view.as_ref()).await.map(Html)
}

async fn live_agents(State(d): State<Arc<Dashboard>>) -> Page {
    let view = d.live().await.map_err(internal)?;
    d.agents(view.as_ref()).await.map(Html)
}

async fn live_newest(State(d): State<Arc<Dashboard>>) -> Page {
    d.newest().await.map(Html)
}

async fn live_sweep(State(d): State<Arc<Dashboard>>, Path(id): Path<String>) -> Page {
    let id = sweep_id(&id)?;
    let progress = d.sweep_progress(id).await?;
    d.query(move |e| pages::sweep_status(e, id, progress)).await.map(Html).map_err(internal)
}

async fn live_agent(State(d): State<Arc<Dashboard>>, Path(id): Path<String>) -> Page {
    let id = agent_id(&id)?;
    match d.agent_line(&id).await? {
        Some(line) => Ok(Html(line)),
        None => Err(not_found(format!("the coordinator does not know agent {id}"))),
    }
}

fn sweep_id(id: &str) -> Result<SweepId, Refusal> {
    id.parse().map_err(|_| bad(format!("{:?} is not a sweep id", short(id))))
}

fn agent_id(id: &str) -> Result<String, Refusal> {
    id.parse::<shared::ids::AgentId>()
        .map(|a| a.to_string())
        .map_err(|e| bad(format!("{:?} is not an agent id: {e}", short(id))))
}

/// At most 64 characters of something a client sent, for an error message.
fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

async fn results(State(d): State<Arc<Dashboard>>, Query(raw): Query<Vec<(String, String)>>) -> Page {
    let filters = pages::Filters::parse(&raw).map_err(bad)?;
    d.query(move |e| pages::results(e, &filters)).await.map(Html).map_err(internal)
}

async fn result(State(d): State<Arc<Dashboard>>, Path(id): Path<String>) -> Page {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(format!("{id:?} is not a result id (32 hex digits)")));
    }
    let lookup = id.clone();
    match d.query(move |e| pages::result(e, &lookup)).await {
        Ok(Some(html)) => Ok(Html(html)),
        Ok(None) => Err(not_found(format!("no result {id} in this warehouse"))),
        Err(e) => Err(internal(e)),
    }
}

async fn compatibility(State(d): State<Arc<Dashboard>>) -> Page {
    d.query(pages::compatibility).await.map(Html).map_err(internal)
}

async fn sweep(State(d): State<Arc<Dashboard>>, Path(id): Path<String>) -> Page {
    let id = sweep_id(&id)?;
    let progress = d.sweep_progress(id).await?;
    match d.query(move |e| pages::sweep(e, id, progress)).await {
        Ok(Some(html)) => Ok(Html(html)),
        Ok(None) => Err(not_found(format!("no sweep {id} here"))),
        Err(e) => Err(internal(e)),
    }
}

async fn agent(State(d): State<Arc<Dashboard>>, Path(id): Path<String>) -> Page {
    let id = agent_id(&id)?;
    let line = d.agent_line(&id).await?;
    let lookup = id.clone();
    match d.query(move |e| pages::agent(e, &lookup, line)).await {
        Ok(Some(html)) => Ok(Html(html)),
        Ok(None) => Err(not_found(format!("no agent {id} here"))),
        Err(e) => Err(internal(e)),
    }
}

/// The query string's values by name; a name not in `known` (or given twice) is refused.
fn params<'a>(raw: &'a [(String, String)], known: &[&str]) -> Result<BTreeMap<&'a str, &'a str>, Refusal> {
    let mut out = BTreeMap::new();
    for (k, v) in raw {
        if !known.contains(&k.as_str()) {
            let why = format!("unknown parameter {:?} (parameters: {})", short(k), known.join(", "));
            return Err(bad(why));
        }
        if v.len() > 1024 {
            return Err(bad(format!("{k}: longer than 1024 bytes")));
        }
        if out.insert(k.as_str(), v.as_str()).is_some() {
            return Err(bad(format!("{k} given twice")));
        }
    }
    Ok(out)
}

/// A selection from a parameter: `None` when empty, 400 naming it when malformed.
fn selection(name: &str, text: Option<&&str>) -> Result<Option<Selection>, Refusal> {
    match text.map(|t| t.trim()).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => Selection::parse(t).map(Some).map_err(|e| bad(format!("{name}: {e}"))),
    }
}

async fn regressions(State(d): State<Arc<Dashboard>>, Query(raw): Query<Vec<(String, String)>>) -> Page {
    let p = params(&raw, &["series"])?;
    let chosen = selection("series", p.get("series"))?;
    d.query(move |e| answers::regressions(e, chosen.as_ref())).await.map(Html).map_err(internal)
}

async fn series(State(d): State<Arc<Dashboard>>, Query(raw): Query<Vec<(String, String)>>) -> Page {
    const KEYS: [&str; 8] =
        ["model", "hardware_class", "batch", "seq_len", "precision", "mode", "engine", "weights_source"];
    let p = params(&raw, &KEYS)?;
    let text = |k: &str| -> Result<String, Refusal> {
        p.get(k)
            .map(|v| v.to_string())
            .ok_or_else(|| bad(format!("a series needs all of {}; {k} is missing", KEYS.join(", "))))
    };
    let number = |k: &str| -> Result<u32, Refusal> {
        let v = text(k)?;
        v.parse().map_err(|_| bad(format!("{k}: {:?} is not a number", short(&v))))
    };
    let c = Coordinates {
        model: text("model")?,
        hardware_class: text("hardware_class")?,
        batch: number("batch")?,
        seq_len: number("seq_len")?,
        precision: text("precision")?,
        mode: text("mode")?,
        engine: text("engine")?,
        weights_source: text("weights_source")?,
    };
    let label = c.label();
    match d.query(move |e| answers::series(e, &c)).await {
        Ok(Some(html)) => Ok(Html(html)),
        Ok(None) => Err(not_found(format!("no ok run of {label}"))),
        Err(e) => Err(internal(e)),
    }
}

async fn compare(State(d): State<Arc<Dashboard>>, Query(raw): Query<Vec<(String, String)>>) -> Page {
    let p = params(&raw, &["base", "new", "threshold"])?;
    let mut options = CompareOptions::DEFAULT;
    if let Some(t) = p.get("threshold").filter(|t| !t.trim().is_empty()) {
        options.threshold = t
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|t| (0.0..1.0).contains(t))
            .ok_or_else(|| bad(format!("threshold {:?}: expected a fraction in [0, 1)", short(t))))?;
    }
    let sides = match (selection("base", p.get("base"))?, selection("new", p.get("new"))?) {
        (Some(b), Some(n)) => Some((b, n)),
        (None, None) => None,
        _ => return Err(bad("compare needs both base and new".into())),
    };
    d.query(move |e| answers::compare(e, sides, &options)).await.map(Html).map_err(internal)
}
