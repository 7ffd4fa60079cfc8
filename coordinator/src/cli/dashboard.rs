//! `accelbench dashboard`: serve the read-only web dashboard ([`crate::dashboard`]) over
//! a warehouse, with no coordinator needed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use super::common::WarehouseArgs;
use crate::dashboard::{router, Dashboard};

#[derive(Debug, Args)]
#[command(long_about = "Serve a read-only web dashboard over a warehouse: sweeps and their \
progress, the newest results, a results explorer (filters; latency against batch with the \
median's 95% interval, throughput against batch, one line per hardware class; memory and \
energy per item; each result's sample histogram) and the compatibility matrix. Pages are \
HTML with SVG drawn on the server: no script, nothing fetched from the internet. It reads the \
committed files again every few seconds, so results committed meanwhile appear.\n\n\
Plain HTTP is served only on a loopback address (the default) unless --insecure; give \
--tls-ca, --tls-cert and --tls-key to serve it over TLS to clients with a reader, submitter, \
admin or node certificate from the lab CA.\n\nExample:\n  accelbench dashboard --warehouse \
./accelbench-data    # then open http://127.0.0.1:8080/")]
pub struct DashboardArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    /// Address to serve on (port 0 picks a free port)
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The lab CA's certificate: clients must present a certificate it signed
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// This server's certificate (`accelbench ca issue --node NAME`)
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// This server's private key
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP on an address other than loopback (anyone who reaches it reads
    /// every result)
    #[arg(long)]
    pub insecure: bool,
}

pub async fn execute(a: DashboardArgs) -> anyhow::Result<ExitCode> {
    let tls = match (&a.tls_ca, &a.tls_cert, &a.tls_key) {
        (Some(ca), Some(cert), Some(key)) => Some(agent::tls::server_config(&agent::tls::TlsFiles {
            ca: ca.clone(),
            cert: cert.clone(),
            key: key.clone(),
        })?),
        (None, None, None) => None,
        _ => anyhow::bail!("--tls-ca, --tls-cert and --tls-key go together"),
    };
    if tls.is_none() && !a.listen.ip().is_loopback() && !a.insecure {
        anyhow::bail!(
            "--listen {}: not a loopback address; serve the dashboard over TLS (--tls-ca, --tls-cert, --tls-key) \
             or pass --insecure",
            a.listen
        );
    }
    let dashboard = Arc::new(Dashboard::new(a.warehouse.clone()));
    // Opened once now: a warehouse that cannot be read fails here, not on the first page.
    dashboard.check().await.with_context(|| format!("opening warehouse {}", a.warehouse.warehouse))?;
    let listener =
        tokio::net::TcpListener::bind(a.listen).await.with_context(|| format!("listening on {}", a.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("dashboard on {scheme}://{addr}/");
    let app = router(dashboard);
    let stop = super::serve::stop_signal()?;
    match tls {
        None => axum::serve(listener, app).with_graceful_shutdown(stop).await?,
        Some(config) => {
            axum::serve(agent::tls::TlsListener::new(listener, config)?, app).with_graceful_shutdown(stop).await?
        }
    }
    Ok(ExitCode::SUCCESS)
}
