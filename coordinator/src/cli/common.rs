//! Arguments and helpers shared by the commands that read or write the warehouse.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::query::{QueryEngine, QueryLimits};
use crate::warehouse::Warehouse;

/// The catalog model a `--model` flag names, or an error listing the catalog.
pub fn catalog_model(name: &str) -> anyhow::Result<&'static shared::catalog::ModelSpec> {
    shared::catalog::lookup(name).ok_or_else(|| {
        let known: Vec<&str> = shared::catalog::all().iter().map(|m| m.name).collect();
        anyhow::anyhow!("--model {name}: unknown model (known: {})", known.join(", "))
    })
}

/// Where the warehouse is.
#[derive(Debug, Args, Clone)]
pub struct WarehouseArgs {
    /// The warehouse: a folder, or a URL (s3://, gs://, az://, file://)
    #[arg(long, env = "ACCELBENCH_WAREHOUSE", default_value = "./accelbench-data", value_name = "URL")]
    pub warehouse: String,
}

impl WarehouseArgs {
    pub async fn open(&self) -> anyhow::Result<Warehouse> {
        Warehouse::open(&self.warehouse).await.with_context(|| format!("opening warehouse {}", self.warehouse))
    }

    /// A confined DuckDB over the committed files (downloaded to a local cache first
    /// when the warehouse is remote).
    pub async fn query_engine(&self) -> anyhow::Result<QueryEngine> {
        self.query_engine_with(QueryLimits::fixed_queries()).await
    }

    /// [`WarehouseArgs::query_engine`] with `limits` on each query.
    pub async fn query_engine_with(&self, limits: QueryLimits) -> anyhow::Result<QueryEngine> {
        let wh = self.open().await?;
        let files = wh.sync_to_local(&self.cache_dir()).await.context("reading the committed files")?;
        Ok(QueryEngine::open_with(&files, limits)?)
    }

    /// Local cache of a remote warehouse: `$XDG_CACHE_HOME/accelbench/<sha of the URL>`.
    fn cache_dir(&self) -> PathBuf {
        use sha2::{Digest, Sha256};
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        let digest = hex::encode(Sha256::digest(self.warehouse.as_bytes()));
        base.join("accelbench").join(&digest[..16])
    }
}
